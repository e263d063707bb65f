"""Benchmark: Kinesis landing on the Postgres catalog with 1, 2 and 4 concurrent shard workers.

Starts the production-shaped devstack (PostgreSQL catalog, S3 data path on the local endpoint,
kinesis-local), puts ``--events`` usage events on a 4-shard stream, then for each worker count lands
the whole stream into a fresh lake (its own catalog database and S3 prefix): each worker is a process
owning an equal share of the shards (``land_kinesis_stream(shard_ids=...)``), committing beside the
others: each transaction claims only the key ranges of its events (``lake/claims.py``), which the
shards of an evenly split stream cover whole, so disjoint shard groups do not conflict (a conflict
would be re-run by ``in_transaction``). The clock runs from the go signal (workers already connected)
to the last worker's end. Checks every event landed once.

``--upper-bound`` adds a second series with the claims switched off in the workers. It is not
exactly-once across writers (nothing stops two writers landing one event), so it only shows what the
claims cost; the events here are distinct, so it lands each once.

Run: ``.venv/bin/python bench/parallel_landing.py [--events 20000]``. Prints a table (with the
transactions re-run after a commit conflict) and, last, the throughput of 2 and 4 workers as ratios
to 1 worker, with the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest

from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.schema import ensure_schema
from cdr_platform.settings import PROJECT_ROOT
from cdr_platform.sources.kinesis_client import kinesis_client
from tests.kinesis_helpers import new_stream, put_events, usage_events
from tests.production_profile import new_production_lake, production_devstack

SHARDS = 4
WORKER = textwrap.dedent(
    """
    import json, sys
    from cdr_platform.lake.connection import connect_lake
    from cdr_platform.lake.kinesis_landing import land_kinesis_stream
    from cdr_platform.sources.kinesis_client import kinesis_client

    import cdr_platform.lake.landing as landing

    catalog, data_path, endpoint, stream, shards, per_page, claim = sys.argv[1:8]
    if claim == "off":
        landing.claim_for_events = lambda *args, **kwargs: None
    attempts = []
    def counted(con, work, **kwargs):  # every attempt of a landing transaction, to count re-runs
        def attempt():
            attempts.append(1)
            return work()
        return transaction(con, attempt, **kwargs)
    transaction, landing.in_transaction = landing.in_transaction, counted
    con = connect_lake(catalog, data_path)
    client = kinesis_client("us-east-1", endpoint)
    print("ready", flush=True)
    sys.stdin.readline()
    report = land_kinesis_stream(
        con, client, stream, records_per_page=int(per_page), max_rounds=10_000, shard_ids=shards.split(",")
    )
    reruns = len(attempts) - report.rounds
    print(json.dumps({"landed": report.landed, "rounds": report.rounds, "reruns": reruns}))
    """
)


def run_workers(
    lake, endpoint: str, stream: str, groups: list[list[str]], per_page: int, claim: str
) -> tuple[float, int, int]:
    """Land the stream with one process per shard group; returns (seconds from go to the end, landed,
    transactions re-run after a commit conflict)."""
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
                ",".join(g),
                str(per_page),
                claim,
            ],
            cwd=PROJECT_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for g in groups
    ]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    landed = reruns = 0
    for worker in workers:
        stdout, _ = worker.communicate(timeout=3600)
        assert worker.returncode == 0, f"a worker failed (exit {worker.returncode})"
        report = json.loads(stdout.strip().splitlines()[-1])
        landed, reruns = landed + report["landed"], reruns + report["reruns"]
    return time.perf_counter() - started, landed, reruns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument(
        "--records-per-page", type=int, default=500, help="Kinesis records per page (KPL aggregates)"
    )
    parser.add_argument("--upper-bound", action="store_true", help="also run without the key-range claims")
    args = parser.parse_args()
    with production_devstack() as stack:
        monkeypatch = pytest.MonkeyPatch()  # the AWS_* and CDR_* variables of each fresh lake
        try:
            endpoint = stack.config.kinesis_endpoint_url
            client = kinesis_client("us-east-1", endpoint)
            stream = new_stream(client, shards=SHARDS)
            put_events(client, stream, usage_events(args.events, members=400, prefix="bench"))
            shards = sorted(s["ShardId"] for s in client.list_shards(StreamName=stream)["Shards"])
            rates: dict[tuple[str, int], float] = {}
            print(
                f"{args.events} events on {SHARDS} shards; Postgres catalog, S3 data path (local endpoints)"
            )
            print(f"{'claim':>5} {'workers':>7} {'seconds':>8} {'events/s':>9} {'landed':>7} {'re-runs':>7}")
            for claim in ("on", "off") if args.upper_bound else ("on",):
                for count in (1, 2, 4):
                    lake = new_production_lake(stack, monkeypatch)
                    con = connect_lake(lake.catalog, lake.data_path)
                    ensure_schema(con)
                    con.close()
                    groups = [shards[i::count] for i in range(count)]
                    seconds, landed, reruns = run_workers(
                        lake, endpoint, stream, groups, args.records_per_page, claim
                    )
                    assert landed == args.events, f"{landed} landed of {args.events}"
                    rates[claim, count] = args.events / seconds
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
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    if args.upper_bound:
        off = rates["off", 2] / rates["off", 1], rates["off", 4] / rates["off", 1]
        print(f"upper bound without the claims: 2 workers {off[0]:.2f}x, 4 workers {off[1]:.2f}x")
    print(
        f"throughput vs 1 worker: 2 workers {rates['on', 2] / rates['on', 1]:.2f}x, "
        f"4 workers {rates['on', 4] / rates['on', 1]:.2f}x (load average {load}, {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
