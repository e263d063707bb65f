"""Benchmark: Kinesis landing on the Postgres catalog with 1, 2 and 4 concurrent shard workers.

Starts the production-shaped devstack (PostgreSQL catalog, S3 data path on the local endpoint,
kinesis-local), puts ``--events`` usage events on a 4-shard stream, then for each worker count lands
the whole stream into a fresh lake (its own catalog database and S3 prefix): each worker is a process
owning an equal share of the shards (``land_kinesis_stream(shard_ids=...)``), committing beside the
others: each transaction claims only the key ranges of its events (``lake/claims.py``), which the
shards of an evenly split stream cover whole, so disjoint shard groups do not conflict (a conflict
would be re-run by ``in_transaction``). The clock runs from the go signal (workers already connected)
to the last worker's end. Checks every event landed once (the workers' counts, and each event id
once in the raw table).

``--emulator-per-worker`` takes the shared kinesis-local out of the way (one emulator process serves
every worker there, and it saturates its one core while real Kinesis serves shards independently):
for each worker count it starts one fresh kinesis-local per worker, and worker k's emulator holds a
stream carrying exactly the events its shard group owns on the 4-shard stream (each event routed by
the hash key of its partition key, md5(member id), to the shard whose hash-key range holds it, then
to that shard's group), with as many shards as the group. Each worker lands its own stream
(``land_kinesis_stream``) from its own endpoint into the same lake (same Postgres catalog and S3
path); the events of a worker keep their key ranges, so the claims of different workers still never
conflict. The 4-shard stream on the devstack's kinesis-local then only lends its shard ranges (no
events on it).

``--upper-bound`` adds a second series with the claims switched off in the workers. It is not
exactly-once across writers (nothing stops two writers landing one event), so it only shows what the
claims cost; the events here are distinct, so it lands each once.

What bounds the runs is measured in each timed window: the CPU seconds of the workers (each its
own process clock), of the kinesis-local, moto S3 and PostgreSQL process trees (the PIDs the devstack
records in its state file, read with psutil, reaped children included, so PostgreSQL's backends of
finished connections count; with ``--emulator-per-worker`` kinesis-local is every emulator summed,
the devstack's idle one included, with the busiest single emulator beside it) and of the whole
machine ("rest" is the machine less those: anything else running). The workers also time their
Kinesis requests (GetRecords among them) and their landing transactions, and count the requests.

Run: ``.venv/bin/python bench/parallel_landing.py [--events 20000] [--emulator-per-worker]
[--upper-bound]``. Prints a table (with the transactions re-run after a commit conflict); the CPU
seconds of each component per window with the cores busy (CPU s / wall s: 1.00 is one core); the
share of the workers' time waiting on Kinesis, in landing transactions and elsewhere, with
kinesis-local CPU per request; a line naming the component that ran out of CPU (medians over the
windows: a single-process service at 0.85 of its core, of the per-worker emulators the busiest, else
the whole machine, and whether other load disturbed the run); and, last, the throughput of 2 and 4
workers as ratios to 1 worker, with the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import pytest

from cdr_platform.devstack.kinesis_local import kill_process, start_kinesis_local, wait_until_serving
from cdr_platform.devstack.ports import free_port
from cdr_platform.events import Event
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.schema import ensure_schema
from cdr_platform.settings import PROJECT_ROOT
from cdr_platform.sources.kinesis_client import kinesis_client
from cdr_platform.sources.kinesis_publisher import ShardMap
from tests.kinesis_helpers import new_stream, put_events, usage_events
from tests.production_profile import new_production_lake, production_devstack

SHARDS = 4
WORKER = textwrap.dedent(
    """
    import json, sys, time
    from cdr_platform.lake.connection import connect_lake
    from cdr_platform.lake.kinesis_landing import land_kinesis_stream
    from cdr_platform.sources.kinesis_client import kinesis_client

    import cdr_platform.lake.landing as landing

    catalog, data_path, endpoint, stream, shards, per_page, claim = sys.argv[1:8]
    if claim == "off":
        landing.claim_for_events = lambda *args, **kwargs: None
    attempts = []
    # seconds waiting on Kinesis requests (on GetRecords), in landing transactions; requests (GetRecords)
    spent = dict.fromkeys(("kinesis_s", "get_s", "commit_s", "requests", "get"), 0)
    def counted(con, work, **kwargs):  # every attempt of a landing transaction, to count re-runs
        def attempt():
            attempts.append(1)
            return work()
        started = time.perf_counter()
        try:
            return transaction(con, attempt, **kwargs)
        finally:
            spent["commit_s"] += time.perf_counter() - started
    transaction, landing.in_transaction = landing.in_transaction, counted
    con = connect_lake(catalog, data_path)
    client = kinesis_client("us-east-1", endpoint)
    api_call = client._make_api_call  # every Kinesis request (ListShards, GetShardIterator, GetRecords)
    def timed_call(operation, params):
        started = time.perf_counter()
        spent["requests"] += 1
        spent["get"] += operation == "GetRecords"
        try:
            return api_call(operation, params)
        finally:
            spent["kinesis_s"] += time.perf_counter() - started
            spent["get_s"] += (time.perf_counter() - started) * (operation == "GetRecords")
    client._make_api_call = timed_call
    print("ready", flush=True)
    sys.stdin.readline()
    wall, cpu = time.perf_counter(), time.process_time()
    report = land_kinesis_stream(
        con, client, stream, records_per_page=int(per_page), max_rounds=10_000, shard_ids=shards.split(",")
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    spent.update(landed=report.landed, reruns=len(attempts) - report.rounds, workers=cpu, worker_wall=wall)
    print(json.dumps(spent))
    """
)
SERVICES = {"kinesis": "kinesis-local", "s3": "moto S3", "postgres": "PostgreSQL"}


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process tree: each live process's own time plus that of its reaped children
    (PostgreSQL's backends of finished connections count in the postmaster's children times)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            t = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (every core, every process) since boot."""
    t = psutil.cpu_times()
    return sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))


class CpuWindow:
    """CPU seconds used by each devstack service (its whole process tree; several processes summed,
    the per-worker emulators with the devstack's kinesis-local) and by the machine."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids

    def sample(self) -> dict[str, float]:
        """Cumulative CPU seconds of each process (``name@pid``) and of the machine."""
        each = {f"{name}@{pid}": tree_cpu(pid) for name, pids in self.pids.items() for pid in pids}
        return {**each, "machine": machine_busy()}

    def used(self, start: dict[str, float], end: dict[str, float]) -> dict[str, float]:
        """CPU seconds between two samples, per service (its processes summed) and of the machine;
        ``kinesis_max`` is the busiest single kinesis-local."""
        spent = {key: end[key] - start[key] for key in start}
        out = {name: sum(spent[f"{name}@{pid}"] for pid in pids) for name, pids in self.pids.items()}
        out["kinesis_max"] = max(spent[f"kinesis@{pid}"] for pid in self.pids["kinesis"])
        return {**out, "machine": spent["machine"]}


@contextmanager
def worker_emulators(count: int, log_dir: Path) -> Iterator[list[tuple[str, int]]]:
    """``count`` fresh kinesis-local processes on free ports (started together); yields (endpoint, PID)
    of each and kills them by PID (SIGKILL: kinesis-local ignores SIGTERM) at the end."""
    processes = []
    try:
        for k in range(count):
            port = free_port()
            process = start_kinesis_local(port, log_dir / f"kinesis-worker-{count}-{k}.log")
            processes.append((f"http://127.0.0.1:{port}", process))
        for endpoint, process in processes:
            wait_until_serving(endpoint, process, deadline_s=120)
        yield [(endpoint, process.pid) for endpoint, process in processes]
    finally:
        for _, process in processes:
            kill_process(process.pid)
            process.wait(timeout=10)


def route_events(events: list[Event], shards: list[dict], groups: list[list[str]]) -> list[list[Event]]:
    """The events each shard group owns on the stream of ``shards`` (ListShards entries): an event goes
    to the shard the publisher routes its partition key (the member id) to, then to that shard's group."""
    group_of = {shard: g for g, group in enumerate(groups) for shard in group}
    shard_map = ShardMap(
        [
            (s["ShardId"], int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]))
            for s in shards
        ]
    )
    routed: list[list[Event]] = [[] for _ in groups]
    for event in events:
        routed[group_of[shard_map.shard_for(event.member_id)]].append(event)
    assert sum(map(len, routed)) == len(events)
    return routed


def run_workers(
    lake, sources: list[tuple[str, str, list[str]]], per_page: int, claim: str, cpu: CpuWindow
) -> tuple[float, int, int, dict[str, float]]:
    """Land with one process per (endpoint, stream, shard ids) source, a shard group each; returns
    (seconds from go to the end, landed, transactions re-run after a commit conflict, CPU and time
    split of the window)."""
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                lake.catalog,
                lake.data_path,
                endpoint,
                stream,
                ",".join(shard_ids),
                str(per_page),
                claim,
            ],
            cwd=PROJECT_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for endpoint, stream, shard_ids in sources
    ]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    before = cpu.sample()
    started = time.perf_counter()
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    split: dict[str, float] = {}  # the workers' CPU and wall seconds, and where their time went, summed
    for worker in workers:
        stdout, _ = worker.communicate(timeout=3600)
        assert worker.returncode == 0, f"a worker failed (exit {worker.returncode})"
        report = json.loads(stdout.strip().splitlines()[-1])
        for key, value in report.items():
            split[key] = split.get(key, 0) + value
    seconds = time.perf_counter() - started
    time.sleep(0.2)  # the postmaster reaps the backends of the workers' connections (idle otherwise)
    landed, reruns = int(split.pop("landed")), int(split.pop("reruns"))
    return seconds, landed, reruns, {**split, **cpu.used(before, cpu.sample())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument(
        "--records-per-page", type=int, default=500, help="Kinesis records per page (KPL aggregates)"
    )
    parser.add_argument("--upper-bound", action="store_true", help="also run without the key-range claims")
    parser.add_argument(
        "--emulator-per-worker",
        action="store_true",
        help="one fresh kinesis-local per worker, holding the events of its shard group",
    )
    args = parser.parse_args()
    per_worker = args.emulator_per_worker
    with production_devstack() as stack:
        monkeypatch = pytest.MonkeyPatch()  # the AWS_* and CDR_* variables of each fresh lake
        try:
            endpoint = stack.config.kinesis_endpoint_url
            client = kinesis_client("us-east-1", endpoint)
            stream = new_stream(client, shards=SHARDS)
            events = usage_events(args.events, members=400, prefix="bench")
            if not per_worker:
                put_events(client, stream, events)
            listed = sorted(client.list_shards(StreamName=stream)["Shards"], key=lambda s: s["ShardId"])
            shards = [s["ShardId"] for s in listed]
            state = json.loads(stack.state_file.read_text())  # the PIDs the devstack recorded
            pids = {name: [state[name]["pid"]] for name in SERVICES}
            rates: dict[tuple[str, int], float] = {}
            usage: dict[tuple[str, int], dict[str, float]] = {}
            print(
                f"{args.events} events on {SHARDS} shards; Postgres catalog, S3 data path (local endpoints); "
                + (
                    "one fresh kinesis-local per worker, holding its shard group's events"
                    if per_worker
                    else "one kinesis-local shared by the workers"
                )
            )
            print(f"{'claim':>5} {'workers':>7} {'seconds':>8} {'events/s':>9} {'landed':>7} {'re-runs':>7}")
            for claim in ("on", "off") if args.upper_bound else ("on",):
                for count in (1, 2, 4):
                    lake = new_production_lake(stack, monkeypatch)
                    con = connect_lake(lake.catalog, lake.data_path)
                    ensure_schema(con)
                    con.close()
                    groups = [shards[i::count] for i in range(count)]
                    with worker_emulators(count if per_worker else 0, stack.state_dir) as emulators:
                        if per_worker:
                            sources = []
                            for (own, _), group, owned in zip(
                                emulators, groups, route_events(events, listed, groups), strict=True
                            ):
                                own_client = kinesis_client("us-east-1", own)
                                own_stream = new_stream(own_client, shards=len(group))
                                put_events(own_client, own_stream, owned)
                                own_shards = own_client.list_shards(StreamName=own_stream)["Shards"]
                                sources.append((own, own_stream, sorted(s["ShardId"] for s in own_shards)))
                        else:
                            sources = [(endpoint, stream, group) for group in groups]
                        cpu = CpuWindow({**pids, "kinesis": pids["kinesis"] + [pid for _, pid in emulators]})
                        seconds, landed, reruns, used = run_workers(
                            lake, sources, args.records_per_page, claim, cpu
                        )
                    assert landed == args.events, f"{landed} landed of {args.events}"
                    assert_landed_once(lake, events)
                    rates[claim, count] = args.events / seconds
                    usage[claim, count] = {"wall": seconds, **used}
                    print(
                        f"{claim:>5} {count:>7} {seconds:>8.1f} {rates[claim, count]:>9.0f} {landed:>7} "
                        f"{reruns:>7}",
                        flush=True,
                    )
        except BaseException:
            log = stack.state_dir / "postgres.log"  # removed with the stack: show why a worker failed
            print(log.read_text()[-3000:] if log.exists() else "no postgres.log", file=sys.stderr)
            raise
        finally:
            monkeypatch.undo()
    print_cpu(usage, per_worker)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    if args.upper_bound:
        off = rates["off", 2] / rates["off", 1], rates["off", 4] / rates["off", 1]
        print(f"upper bound without the claims: 2 workers {off[0]:.2f}x, 4 workers {off[1]:.2f}x")
    mode = "one kinesis-local per worker" if per_worker else "one shared kinesis-local"
    print(
        f"throughput vs 1 worker ({mode}): 2 workers {rates['on', 2] / rates['on', 1]:.2f}x, "
        f"4 workers {rates['on', 4] / rates['on', 1]:.2f}x (load average {load}, {os.cpu_count()} cores)"
    )


def assert_landed_once(lake, events: list[Event]) -> None:
    """Every event put is in the lake's raw table exactly once (and nothing else is)."""
    con = connect_lake(lake.catalog, lake.data_path)
    try:
        ids = [str(row[0]) for row in con.execute("SELECT event_id FROM raw.usage_events").fetchall()]
    finally:
        con.close()
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} events landed twice"
    assert set(ids) == {str(event.event_id) for event in events}, "landed events differ from those put"


COMPONENTS = {"workers": "workers", **SERVICES}
SATURATED = 0.85  # of a core (one process) or of the machine


def print_cpu(usage: dict[tuple[str, int], dict[str, float]], per_worker: bool = False) -> None:
    """CPU seconds of each component in each timed window (and as cores: seconds / wall seconds),
    where the workers' time went, and which component ran out of CPU."""
    cores = os.cpu_count() or 1
    print(f"CPU seconds in the timed window (cores busy = CPU s / wall s; the machine has {cores} cores)")
    if per_worker:
        print(
            "kinesis-local: all emulators summed (one per worker plus the devstack's idle one); "
            "busiest kl: the busiest single emulator (one core at most)"
        )
    columns = [*COMPONENTS, *(["kinesis_max"] if per_worker else []), "rest", "machine"]
    names = {**COMPONENTS, "kinesis_max": "busiest kl", "rest": "rest", "machine": "machine"}
    print(f"{'claim':>5} {'workers':>7} {'wall s':>6} " + " ".join(f"{names[key]:>14}" for key in columns))
    for (claim, count), u in usage.items():
        u["rest"] = u["machine"] - sum(u[key] for key in COMPONENTS)  # anything else on the machine
        cells = [f"{u[key]:6.1f} ({u[key] / u['wall']:4.2f})" for key in columns]
        print(f"{claim:>5} {count:>7} {u['wall']:>6.1f} " + " ".join(f"{c:>14}" for c in cells))
    print(
        "worker time (summed over the workers): share waiting on Kinesis requests (of it in GetRecords), in "
        "landing transactions, other; worker CPU; requests, kinesis-local CPU per request"
    )
    for (claim, count), u in usage.items():
        wall, kinesis, landing = u["worker_wall"], u["kinesis_s"], u["commit_s"]
        print(
            f"{claim:>5} {count:>7}   kinesis {kinesis / wall:4.2f} ({u['get_s'] / wall:4.2f})   "
            f"landing {landing / wall:4.2f}   other {(wall - kinesis - landing) / wall:4.2f}   "
            f"CPU {u['workers'] / wall:4.2f}   {u['requests']:>3.0f} requests ({u['get']:.0f} GetRecords), "
            f"{1000 * u['kinesis'] / u['requests']:.0f} ms CPU each"
        )
    print(conclusion(usage, cores, per_worker))


def conclusion(usage: dict[tuple[str, int], dict[str, float]], cores: int, per_worker: bool = False) -> str:
    """Which component ran out of CPU, from the measurements alone (medians over the windows)."""
    keys = [*COMPONENTS, "kinesis_max", "rest", "machine"]
    busy = {key: statistics.median(u[key] / u["wall"] for u in usage.values()) for key in keys}
    waiting = statistics.median(u["kinesis_s"] / u["worker_wall"] for u in usage.values())
    # one process each, one core at most: the busiest kinesis-local (the only one unless per worker), moto
    single = {"kinesis": busy["kinesis_max"], "s3": busy["s3"]}
    name, share = max(single.items(), key=lambda item: item[1])
    split = ", ".join(f"{COMPONENTS[key]} {busy[key]:.2f}" for key in COMPONENTS)
    disturbed = (
        f"; other load on the machine took {busy['rest']:.2f} cores (not a quiet run)"
        if busy["rest"] >= 0.3
        else ""
    )
    if share >= SATURATED:
        if name == "kinesis" and per_worker:
            return (
                f"bound: the busiest kinesis-local (one per worker) is saturated at {share:.2f} of its one "
                f"core (cores busy, median over the windows: {split}, emulators summed); the workers wait "
                f"{waiting:.2f} of their time on Kinesis requests, each on its own emulator{disturbed}"
            )
        return (
            f"bound: {SERVICES[name]} is saturated at {share:.2f} of its one core (cores busy, median "
            f"over the windows: {split}); the workers wait {waiting:.2f} of their time on Kinesis requests, "
            f"so more workers only queue on it{disturbed}"
        )
    largest = max(COMPONENTS, key=lambda key: busy[key])
    if busy["machine"] >= SATURATED * cores:
        return (
            f"bound: the machine's {cores} cores ({busy['machine']:.2f} busy, median), shared by {split}, "
            f"no single-process service at one core; the largest here is {COMPONENTS[largest]}{disturbed}"
        )
    return (
        f"nothing CPU-saturated (median: machine {busy['machine']:.2f} of {cores} cores; {split}); "
        f"the largest is {COMPONENTS[largest]}: the bound is waiting (latency), not CPU{disturbed}"
    )


if __name__ == "__main__":
    main()
