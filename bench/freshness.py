"""Benchmark: freshness under live traffic, EventStoreDB append -> row visible in the raw layer.

A live simulation appends to EventStoreDB, the relay publishes to Kinesis, and a loop ticks the real
``kinesis_usage_sensor`` once a second and executes the landing job it requests (in process, the
same code a daemon-launched run executes). Latency per event is ``ingested_at`` (set in the landing
transaction, which commits right after) minus the event's ``recorded_at`` in EventStoreDB.
Baseline in the same run: append -> arrival on Kinesis (the relay's share of the latency).
A deployed daemon adds its sensor interval (5 s minimum here) and a run process start-up on top.

With ``--marts``, dbt runs ``+rpt_exec_kpis_intraday`` back to back meanwhile (incremental), and an
event counts as visible in the executives' view when the first dbt run that started after its
landing commit finishes.

Run: ``.venv/bin/python bench/freshness.py [--seconds 60] [--marts]``; the last line is the headline.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd
from dagster import DagsterInstance, SensorResult, build_sensor_context
from esdbclient import EventStoreDBClient

from cdr_platform.definitions import build_definitions
from cdr_platform.defs.transform.project import DBT_EXECUTABLE, DBT_PROJECT_DIR
from cdr_platform.devtools.shutdown import CleanStop
from cdr_platform.devtools.stack import devstack_for
from cdr_platform.events.framing import deaggregate
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.reconciliation import refresh_index
from cdr_platform.settings import Settings
from cdr_platform.simulator.faults import FaultConfig
from cdr_platform.simulator.model import OperatorConfig, build_operator
from cdr_platform.simulator.producers import EventStoreProducer
from cdr_platform.simulator.simulation import Simulation
from cdr_platform.sources.kinesis_client import kinesis_client
from cdr_platform.sources.kinesis_reader import list_shards, read_shard_page
from cdr_platform.sources.relay import Relay, RelayConfig
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
                for user in deaggregate(record.partition_key, record.data):
                    rows.append((json.loads(user.data)["event_id"], record.arrival_ms / 1000))
            if not page.records:
                break
            after = page.last_sequence
    return pd.DataFrame(rows, columns=["event_id", "arrival_s"])


def dbt_loop(
    settings: Settings, stop: threading.Event, runs: list[tuple[float, float, bool]], writer: threading.Lock
) -> None:
    """Run the exec KPI model and its upstream incrementally, back to back, recording (start, end, ok).

    ``writer`` plays the Dagster pool ``lake_writer``: dbt and landing never commit at once.
    """
    env = {
        **os.environ,
        "CDR_LAKE_CATALOG": settings.resolved_lake_catalog,
        "CDR_LAKE_DATA_PATH": settings.resolved_lake_data_path,
    }
    command = [DBT_EXECUTABLE, "run", "--select", "+rpt_exec_kpis_intraday", "--quiet"]
    command += ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    while not stop.is_set():
        with writer:
            started = time.time()
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            runs.append((started, time.time(), result.returncode == 0))
        stop.wait(0.5)  # a pool queues fairly; a bare lock would let this loop starve the landing runs
        if result.returncode != 0:
            failure = (result.stdout + result.stderr).strip().splitlines()
            print(f"dbt run failed: {' | '.join(failure[-3:])[:300]}", file=sys.stderr)


def mart_latencies(landed: list[tuple[float, float]], runs: list[tuple[float, float, bool]]) -> list[float]:
    """Per event (recorded, ingested): end of the first successful dbt run that started after ingestion."""
    good = sorted((start, end) for start, end, ok in runs if ok)
    starts = [start for start, _ in good]
    out = []
    for recorded, ingested in landed:
        index = bisect.bisect_right(starts, ingested)
        if index < len(good):
            out.append(good[index][1] - recorded)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--members", type=int, default=2_000)
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per second")
    parser.add_argument("--marts", action="store_true", help="also measure append -> rpt_exec_kpis_intraday")
    args = parser.parse_args()
    dbt_runs: list[tuple[float, float, bool]] = []
    writer = threading.Lock()

    with tempfile.TemporaryDirectory() as tmp:
        settings = local_settings(Path(tmp), reconcile_settle_seconds=0)
        with devstack_for(settings, persistent=False):
            eventstore_uri = settings.eventstore_uri.get_secret_value()
            esdb = EventStoreDBClient(eventstore_uri)
            kinesis = kinesis_client(settings.aws_region, settings.kinesis_endpoint_url)
            stop = threading.Event()
            operator = build_operator(OperatorConfig(seed=5, members=args.members), datetime.now(UTC), 1)
            producer = EventStoreProducer(EventStoreDBClient(eventstore_uri), workers=4)
            simulation = Simulation(operator, producer, FaultConfig(seed=5))
            relay = Relay(esdb, kinesis, RelayConfig(settings.usage_stream, Path(tmp) / "relay.json"))
            threads = [
                threading.Thread(target=simulation.run_live, kwargs={"speed": args.speed, "stop": stop}),
                threading.Thread(target=relay.run, kwargs={"stop": stop}),
            ]
            if args.marts:
                threads.append(threading.Thread(target=dbt_loop, args=(settings, stop, dbt_runs, writer)))
            for thread in threads:
                thread.start()
            defs = build_definitions(settings)
            sensor = defs.resolve_sensor_def("kinesis_usage_sensor")
            job = defs.resolve_job_def(sensor.job_name)
            runs = 0
            deadline = time.monotonic() + args.seconds
            with DagsterInstance.ephemeral() as instance:
                while time.monotonic() < deadline:
                    tick = time.monotonic()
                    result = sensor(build_sensor_context(instance=instance, resources=defs.resources))
                    if isinstance(result, SensorResult) and result.run_requests:
                        with writer:
                            job.execute_in_process(
                                run_config=QUIET, instance=instance, resources=defs.resources
                            )
                        runs += 1
                    time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
            stop.set()
            for thread in threads:
                thread.join(timeout=120)
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
                SELECT epoch(i.recorded_at), epoch(u.ingested_at)
                FROM raw.usage_events u JOIN meta.eventstore_usage_index i USING (event_id)
                WHERE i.recorded_at IS NOT NULL
                """
            ).fetchall()
            con.close()
            esdb.close()
    landed = [ingested - recorded for recorded, ingested in rows]
    print(f"{'stage':44} {'events':>8} {'p50 s':>7} {'p95 s':>7}")
    print(
        f"{'baseline: append -> arrival on Kinesis':44} {len(relayed):8,d} "
        f"{percentile(relayed, 0.5):7.2f} {percentile(relayed, 0.95):7.2f}"
    )
    print(
        f"{'append -> visible in raw/usage_events':44} {len(landed):8,d} "
        f"{percentile(landed, 0.5):7.2f} {percentile(landed, 0.95):7.2f}"
    )
    if args.marts:
        in_marts = mart_latencies(rows, dbt_runs)
        print(
            f"{'append -> in rpt_exec_kpis_intraday':44} {len(in_marts):8,d} "
            f"{percentile(in_marts, 0.5):7.2f} {percentile(in_marts, 0.95):7.2f}"
        )
        ok = [end - start for start, end, good in dbt_runs if good]
        print(f"dbt runs: {len(ok)} ok of {len(dbt_runs)}, {sum(ok) / max(len(ok), 1):.1f}s each on average")
    print(f"landing runs: {runs} in {args.seconds:.0f}s")
    if args.marts:
        print(f"exec KPI freshness p95 = {percentile(in_marts, 0.95):.2f}s (target <= 15 s)")
    ratio = percentile(landed, 0.95) / percentile(relayed, 0.95)
    print(f"freshness p95 = {percentile(landed, 0.95):.2f}s (target <= 5 s), {ratio:.1f}x the relay's p95")


if __name__ == "__main__":
    with CleanStop("bench/freshness.py"):  # Ctrl-C or SIGTERM ends every process it started
        main()
