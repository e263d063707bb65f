"""Benchmark: freshness under live traffic, EventStoreDB append -> visible in the raw layer, and in
the executives' view.

A live simulation appends to EventStoreDB, the relay publishes to Kinesis, and a loop ticks the real
``kinesis_usage_sensor`` once a second and executes the landing job it requests (in process, the
same code a daemon-launched run executes). Raw latency per event is ``ingested_at`` (set in the
landing transaction, which commits right after) minus the event's ``recorded_at`` in EventStoreDB.
Baseline in the same run: append -> arrival on Kinesis (the relay's share of the latency).

The exec models are built once (dbt, as the automation's first run would); after that dbt runs on the
default automation's cadence only (``--dbt-every``, 600 s), sharing the writer lock with landing as the
Dagster pool ``lake_writer`` does. Two phases then alternate (``--rounds``, so both see the same
machine load, lake size and trend in traffic: ABBA order) under the same traffic:

- A, without the exec view: landing only;
- B, with it: a reader queries ``rpt_exec_kpis_intraday`` every ``--poll-seconds`` once a commit has
  moved the lake's snapshot since its last query (what the dashboard's reader does too), and
  the dashboard (``cdr-platform dashboard``, a subprocess) is loaded every 5 s as an open page would.

An event is visible in the exec view at the end of the first query that started after its landing
commit and whose as-of time has reached its event time (the view reads the raw layer at query time,
so it counts every landed event up to its as-of). Raw p95 in B against A is the cost of the view.

Simulated time starts at ``--start-hour`` (UTC) of yesterday, a busy hour by default (traffic
follows the time of day; ``--start-hour 2`` for night traffic, ``now`` for the wall clock's time).
The simulation appends its producer clock after each chunk, as ``simulate --mode live`` does, so
the relay's heartbeats keep the as-of time moving when opening events are sparse.

Run: ``.venv/bin/python bench/freshness.py [--seconds 60]``; the last line is the headline.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd
from dagster import DagsterInstance, SensorResult, build_sensor_context
from esdbclient import EventStoreDBClient

from cdr_platform.definitions import build_definitions
from cdr_platform.defs.transform.project import DBT_EXECUTABLE, DBT_PROJECT_DIR
from cdr_platform.devtools.shutdown import CleanStop
from cdr_platform.devtools.stack import devstack_for
from cdr_platform.lake.connection import connect_lake, current_snapshot
from cdr_platform.lake.reconciliation import refresh_index
from cdr_platform.settings import Settings
from cdr_platform.simulator.faults import FaultConfig
from cdr_platform.simulator.model import OperatorConfig, build_operator
from cdr_platform.simulator.producers import EventStoreProducer, ProducerClock
from cdr_platform.simulator.simulation import Simulation
from cdr_platform.sources.kinesis_client import kinesis_client
from cdr_platform.sources.kinesis_reader import list_shards, read_shard_page
from cdr_platform.sources.relay import Relay, RelayConfig
from cdr_platform.sources.relay_heartbeat import event_records
from tests.conftest import local_settings

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def kinesis_arrivals(client, stream: str) -> pd.DataFrame:
    """(event_id, arrival time in epoch seconds) of every event on the stream."""
    rows = []
    for shard in list_shards(client, stream):
        after = None
        while True:
            page = read_shard_page(client, stream, shard.shard_id, after, max_records=1_000)
            for record in page.records:
                for user in event_records(record.partition_key, record.data):
                    rows.append((json.loads(user.data)["event_id"], record.arrival_ms / 1000))
            if not page.records:
                break
            after = page.last_sequence
    return pd.DataFrame(rows, columns=["event_id", "arrival_s"])


def lake_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "CDR_LAKE_CATALOG": settings.resolved_lake_catalog,
        "CDR_LAKE_DATA_PATH": settings.resolved_lake_data_path,
    }


@dataclass
class DbtRun:
    started: float
    ended: float
    ok: bool


def run_exec_models(settings: Settings, writer: threading.Lock) -> DbtRun:
    """One incremental ``dbt run`` of what the dashboard reads (the exec models, the cell KPIs) and
    their upstream, holding the writer lock."""
    command = [
        DBT_EXECUTABLE,
        "run",
        "--select",
        "+rpt_exec_kpis_intraday +rpt_exec_kpis_hourly +fct_cell_kpis_hourly",
        "--quiet",
    ]
    command += ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    with writer:
        started = time.time()
        result = subprocess.run(command, env=lake_env(settings), capture_output=True, text=True, check=False)
        run = DbtRun(started, time.time(), result.returncode == 0)
    if not run.ok:
        failure = (result.stdout + result.stderr).strip().splitlines()
        print(f"dbt run failed: {' | '.join(failure[-3:])[:300]}", file=sys.stderr)
    return run


def automation_loop(
    settings: Settings, writer: threading.Lock, every_s: float, stop: threading.Event, runs: list[DbtRun]
) -> None:
    """The default automation's cadence: the exec models (and upstream) at most every ``every_s``."""
    while not stop.wait(every_s):
        runs.append(run_exec_models(settings, writer))


@dataclass
class ExecQuery:
    started: float
    ended: float
    as_of: float | None


def poll_exec_view(settings: Settings, every_s: float, stop: threading.Event, out: list[ExecQuery]) -> None:
    """Query the exec view as a reader would, every ``every_s`` once something was committed since its
    last query (as the dashboard does: the view changes with the lake's data only, so a query on an
    unchanged snapshot would see nothing new): (start, end, as-of) of each query."""
    con = connect_lake(settings.resolved_lake_catalog, settings.resolved_lake_data_path, read_only=True)
    queried = None
    try:
        while not stop.is_set():
            started = time.time()
            snapshot = current_snapshot(con)
            if snapshot is None or snapshot != queried:
                row = con.execute(
                    "SELECT epoch(max(as_of)), sum(value_today) FROM marts.rpt_exec_kpis_intraday"
                ).fetchone()
                out.append(ExecQuery(started, time.time(), row[0] if row else None))
                queried = snapshot
            stop.wait(max(0.0, every_s - (time.time() - started)))
    finally:
        con.close()


def load_dashboard(url: str, every_s: float, stop: threading.Event, seconds: list[float]) -> None:
    """What an open dashboard page costs: its layout (every figure re-read) every ``every_s``."""
    while not stop.is_set():
        started = time.time()
        with urllib.request.urlopen(url, timeout=60) as response:
            response.read()
        seconds.append(time.time() - started)
        stop.wait(max(0.0, every_s - (time.time() - started)))


def start_dashboard(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    """``cdr-platform dashboard`` on ``port``, its request log in ``log`` (a pipe nobody drains
    would fill up and stall the server)."""
    command = [sys.executable, "-m", "cdr_platform.cli", "dashboard", "--port", str(port)]
    # Dagster's in-process runs map SIGTERM to SIGINT's handler, which is SIG_IGN in a background job:
    # a child would inherit SIGTERM ignored, so it starts with the default disposition.
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with log.open("wb") as stderr:
            process = subprocess.Popen(  # no terminal stdin: a background job reading it would be stopped
                command,
                env=lake_env(settings),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
    finally:
        signal.signal(signal.SIGTERM, previous)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the dashboard exited: {log.read_text(errors='replace')[-500:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
                return process
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    stop_dashboard(process)
    raise RuntimeError("the dashboard did not start within 180 s")


def stop_dashboard(process: subprocess.Popen[bytes]) -> None:
    """Terminate, then kill what did not stop within 20 s: results never wait on the dashboard."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        print("the dashboard did not stop on SIGTERM within 20 s: killed", file=sys.stderr)
        process.kill()
        process.wait(timeout=20)


def exec_latencies(events: list[tuple[float, float, float]], queries: list[ExecQuery]) -> list[float]:
    """Per event (recorded, ingested, occurred): end of the first query started after its landing
    whose as-of reached its event time, minus recorded; ``inf`` if none did."""
    ordered = sorted(queries, key=lambda q: q.started)
    starts = [q.started for q in ordered]
    out = []
    for recorded, ingested, occurred in events:
        index = bisect.bisect_right(starts, ingested)
        seen = next((q for q in ordered[index:] if q.as_of is not None and q.as_of >= occurred), None)
        out.append(seen.ended - recorded if seen else float("inf"))
    return out


def simulated_start(hour: str) -> datetime:
    """Now, or ``hour`` o'clock UTC yesterday (the day before when that is less than 12 h ago), so no
    event time runs ahead of the clock."""
    now = datetime.now(UTC)
    if hour == "now":
        return now
    start = (now - timedelta(days=1)).replace(hour=int(hour), minute=0, second=0, microsecond=0)
    return start if now - start >= timedelta(hours=12) else start - timedelta(days=1)  # 12 h at 60x: 12 min


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=120.0, help="length of each phase, all rounds")
    parser.add_argument("--rounds", type=int, default=4, help="A/B alternations (AB, BA, AB, ...)")
    parser.add_argument("--members", type=int, default=2_000)
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per second")
    parser.add_argument("--dbt-every", type=float, default=600.0, help="the automation's cadence, seconds")
    parser.add_argument("--poll-seconds", type=float, default=0.5, help="exec view query interval")
    parser.add_argument("--start-hour", default="10", help="UTC hour simulated time starts at, or 'now'")
    parser.add_argument("--grace", type=float, default=10.0, help="exec reads after each B, seconds")
    args = parser.parse_args()
    writer = threading.Lock()
    dbt_runs: list[DbtRun] = []
    queries: list[ExecQuery] = []
    page_loads: list[float] = []
    phases: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}

    with tempfile.TemporaryDirectory() as tmp:
        settings = local_settings(Path(tmp), reconcile_settle_seconds=0)
        with devstack_for(settings, persistent=False):
            eventstore_uri = settings.eventstore_uri.get_secret_value()
            esdb = EventStoreDBClient(eventstore_uri)
            kinesis = kinesis_client(settings.aws_region, settings.kinesis_endpoint_url)
            stop, stop_readers = threading.Event(), threading.Event()
            operator = build_operator(
                OperatorConfig(seed=5, members=args.members), simulated_start(args.start_hour), 1
            )
            producer = EventStoreProducer(EventStoreDBClient(eventstore_uri), workers=4)
            clock = ProducerClock(EventStoreDBClient(eventstore_uri))  # the relay heartbeats follow it
            simulation = Simulation(operator, producer, FaultConfig(seed=5), on_appended=clock.tick)
            relay = Relay(esdb, kinesis, RelayConfig(settings.usage_stream, Path(tmp) / "relay.json"))
            threads = [
                threading.Thread(target=simulation.run_live, kwargs={"speed": args.speed, "stop": stop}),
                threading.Thread(target=relay.run, kwargs={"stop": stop}),
            ]
            for thread in threads:
                thread.start()
            defs = build_definitions(settings)
            sensor = defs.resolve_sensor_def("kinesis_usage_sensor")
            job = defs.resolve_job_def(sensor.job_name)
            landing_runs = 0
            dashboard: subprocess.Popen[bytes] | None = None
            with DagsterInstance.ephemeral() as instance:

                def land_for(seconds: float) -> None:
                    nonlocal landing_runs
                    deadline = time.monotonic() + seconds
                    while time.monotonic() < deadline:
                        tick = time.monotonic()
                        result = sensor(build_sensor_context(instance=instance, resources=defs.resources))
                        if isinstance(result, SensorResult) and result.run_requests:
                            with writer:
                                job.execute_in_process(
                                    run_config=QUIET, instance=instance, resources=defs.resources
                                )
                            landing_runs += 1
                        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))

                try:
                    land_for(10)  # some traffic, so the first build has an as-of time
                    setup = run_exec_models(settings, writer)
                    if not setup.ok:
                        raise SystemExit("the exec models did not build: see the dbt error above")
                    automation = threading.Thread(
                        target=automation_loop, args=(settings, writer, args.dbt_every, stop, dbt_runs)
                    )
                    automation.start()
                    threads.append(automation)
                    port = free_port()
                    dashboard = start_dashboard(settings, port, Path(tmp) / "dashboard.log")
                    land_for(5)  # settle after the build and the dashboard start
                    # A and B alternate, in ABBA order, so both see the same machine load, lake size and
                    # trend in traffic (it follows the time of day; A always first would favour A).
                    for round_index in range(args.rounds):
                        for phase in ("A", "B") if round_index % 2 == 0 else ("B", "A"):
                            if phase == "A":
                                low = time.time()
                                land_for(args.seconds / args.rounds)
                                phases["A"].append((low, time.time()))
                                continue
                            stop_readers = threading.Event()
                            dashboard_url = f"http://127.0.0.1:{port}/_dash-layout"
                            readers = [
                                threading.Thread(
                                    target=poll_exec_view,
                                    args=(settings, args.poll_seconds, stop_readers, queries),
                                ),
                                threading.Thread(
                                    target=load_dashboard, args=(dashboard_url, 5.0, stop_readers, page_loads)
                                ),
                            ]
                            for thread in readers:
                                thread.start()
                            low = time.time()
                            land_for(args.seconds / args.rounds)
                            phases["B"].append((low, time.time()))
                            land_for(args.grace)  # readers go on: events landed late in B become visible
                            stop_readers.set()
                            for thread in readers:
                                thread.join(timeout=120)
                finally:
                    stop.set()
                    stop_readers.set()  # the current round's readers, if a failure interrupted it
                    if dashboard is not None:
                        stop_dashboard(dashboard)
            for thread in threads:
                thread.join(timeout=180)
            producer.close()

            arrivals = kinesis_arrivals(kinesis, settings.usage_stream)
            con = connect_lake(settings.resolved_lake_catalog, settings.resolved_lake_data_path)
            refresh_index(con, esdb)
            con.register("arrivals", arrivals)
            relayed = [
                r[0]
                for r in con.execute(
                    """
                    SELECT a.arrival_s - epoch(i.recorded_at)
                    FROM arrivals a
                    JOIN meta.eventstore_usage_index i ON i.event_id = CAST(a.event_id AS UUID)
                    WHERE i.recorded_at IS NOT NULL
                    """
                ).fetchall()
            ]
            rows = con.execute(
                """
                SELECT epoch(i.recorded_at), epoch(u.ingested_at), epoch(u.occurred_at)
                FROM raw.usage_events u JOIN meta.eventstore_usage_index i USING (event_id)
                WHERE i.recorded_at IS NOT NULL
                """
            ).fetchall()
            con.close()
            esdb.close()

    def landed_in(phase: str) -> list[tuple[float, float, float]]:
        return [row for row in rows if any(low <= row[1] < high for low, high in phases[phase])]

    raw_a = [ingested - recorded for recorded, ingested, _ in landed_in("A")]
    raw_b = [ingested - recorded for recorded, ingested, _ in landed_in("B")]
    in_exec = exec_latencies(landed_in("B"), queries)
    query_s = [q.ended - q.started for q in queries]
    in_phases = [r for r in dbt_runs if r.started < max(high for _, high in phases["A"] + phases["B"])]
    print(f"{'stage':62} {'events':>8} {'p50 s':>7} {'p95 s':>7}")
    table = [
        ("baseline: append -> arrival on Kinesis", relayed),
        ("A (no exec view): append -> visible in raw/usage_events", raw_a),
        ("B (exec view + dashboard): append -> visible in raw/usage_events", raw_b),
        ("B: append -> visible in rpt_exec_kpis_intraday (as-of reached)", in_exec),
        ("B: one query of rpt_exec_kpis_intraday (seconds)", query_s),
        ("B: one dashboard page load (seconds)", page_loads),
    ]
    for label, values in table:
        print(f"{label:62} {len(values):8,d} {percentile(values, 0.5):7.2f} {percentile(values, 0.95):7.2f}")
    unseen = sum(1 for value in in_exec if value == float("inf"))
    print(
        f"landing runs: {landing_runs}; exec view queries: {len(queries)}; "
        f"events of B never visible: {unseen}; "
        f"setup dbt run {setup.ended - setup.started:.1f}s; dbt runs during the phases: {len(in_phases)} "
        f"(automation cadence {args.dbt_every:.0f}s)"
    )
    ratio = percentile(raw_b, 0.95) / percentile(raw_a, 0.95)
    print(
        f"exec view p95 = {percentile(in_exec, 0.95):.2f}s (target <= 5 s); raw p95 with the exec view "
        f"{percentile(raw_b, 0.95):.2f}s vs {percentile(raw_a, 0.95):.2f}s without ({ratio:.2f}x)"
    )


if __name__ == "__main__":
    with CleanStop("bench/freshness.py"):  # Ctrl-C or SIGTERM ends every process it started
        main()
