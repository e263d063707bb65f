"""Benchmark: how the cost of each lake step grows with history, at 1M and at 10M events.

For each history size, in a fresh DuckLake warehouse: land the history straight through the landing
code (``land_batch``, big batches, event time in order, ~``--per-day`` events a day), compact it as
the maintenance job would, then time: one landing batch of 5,000 live events; one incremental
reconciliation run after an hour of new traffic (the EventStoreDB index is written into the lake
as ``refresh_index`` would, and the client is a stand-in that has nothing newer, so the figure is
the lake side). Beside them, the landing's own ceiling with no endpoint in the way: KPL-aggregated
records from memory, de-aggregated, parsed and committed, in events/s on one core, against plain
``json.loads`` of the same payloads. Prints a table and, last, the largest ratio 10M/1M (target <= 1.3).

Not measured yet (see the report of issue 11): the incremental ``dbt build`` and the analyst's mart
query, which need the marts built over the bench's history.

Run: ``.venv/bin/python bench/scale.py [--sizes 1000000 10000000] [--per-day 200000]``;
``--ceiling-only`` measures the landing ceiling alone (a few seconds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb

from cdr_platform.events import encode_event
from cdr_platform.events.framing import UserRecord, deaggregate, pack_records
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.landing import LandingBatch, SourceRecord, land_batch
from cdr_platform.lake.maintenance import maintain_lake
from cdr_platform.lake.reconciliation import reconcile_usage_events
from cdr_platform.lake.schema import ensure_schema
from tests.events.samples import build_event

WINDOW = timedelta(hours=6)
NAMESPACE = uuid.UUID("0b6f6a52-5f7e-4d7e-9a55-1f3c5d8e2a10")
END = datetime(2026, 1, 1, tzinfo=UTC)
TEMPLATE = encode_event(build_event("call_ended", "template")).decode()
_ID = json.loads(TEMPLATE)["event_id"]
_AT = json.loads(TEMPLATE)["occurred_at"]


def payload(key: str, at: datetime) -> bytes:
    """A valid call_ended event: the sample with its own UUIDv5 id and event time."""
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return TEMPLATE.replace(_ID, str(uuid.uuid5(NAMESPACE, key))).replace(_AT, stamp).encode()


def events(prefix: str, start: datetime, count: int, per_day: int) -> Iterator[SourceRecord]:
    step = timedelta(days=1) / per_day
    for i in range(count):
        yield SourceRecord(payload(f"{prefix}-{i}", start + i * step), f"{prefix}/{i}")


def land_all(con: duckdb.DuckDBPyConnection, records: Iterator[SourceRecord], batch: int) -> int:
    chunk: list[SourceRecord] = []
    landed = 0
    for record in records:
        chunk.append(record)
        if len(chunk) == batch:
            landed += land_batch(con, LandingBatch("bench", chunk), dedupe_window=WINDOW).landed
            chunk = []
    if chunk:
        landed += land_batch(con, LandingBatch("bench", chunk), dedupe_window=WINDOW).landed
    return landed


def index_new_rows(con: duckdb.DuckDBPyConnection) -> None:
    """What ``refresh_index`` writes for events EventStoreDB holds: here, every raw row not indexed yet."""
    con.execute(
        """
        INSERT INTO meta.eventstore_usage_index
        SELECT event_id, event_type, occurred_at,
               (SELECT coalesce(max(commit_position), 0) FROM meta.eventstore_usage_index)
                   + row_number() OVER (ORDER BY occurred_at),
               ingested_at
        FROM raw.usage_events WHERE ingested_at > coalesce(
            (SELECT max(recorded_at) FROM meta.eventstore_usage_index), TIMESTAMPTZ '1970-01-01')
        """
    )


class NothingNewer:
    """Stands in for EventStoreDB when the index already holds everything."""

    def read_all(self, **_: object) -> list:
        return []


def timed(action, repeat: int = 3) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def measure(size: int, per_day: int, build_batch: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        con = connect_lake(f"sqlite:{tmp}/catalog.sqlite", f"{tmp}/files/")
        ensure_schema(con)
        start = END - timedelta(days=size / per_day)
        started = time.perf_counter()
        land_all(con, events("h", start, size, per_day), build_batch)
        index_new_rows(con)
        maintain_lake(con, timedelta(0), datetime.now(UTC))
        reconcile_usage_events(con, NothingNewer(), datetime.now(UTC) + timedelta(hours=1))  # full, first
        build_s = time.perf_counter() - started

        live = iter(range(10**9))

        def land_live_batch() -> None:
            n = next(live)
            land_batch(
                con, LandingBatch("bench", list(events(f"live{n}", END, 5000, per_day))), dedupe_window=WINDOW
            )

        landing_s = timed(land_live_batch)
        hour = per_day // 24

        def reconcile_after_an_hour() -> None:
            n = next(live)
            land_all(con, events(f"hour{n}", END + timedelta(hours=1), hour, per_day), 5000)
            index_new_rows(con)
            started = time.perf_counter()
            reconcile_usage_events(
                con, NothingNewer(), datetime.now(UTC) + timedelta(hours=1), lookback=timedelta(hours=6)
            )
            reconcile_times.append(time.perf_counter() - started)

        reconcile_times: list[float] = []
        for _ in range(3):
            reconcile_after_an_hour()
        con.close()
        return {"build_s": build_s, "landing_s": landing_s, "reconcile_s": statistics.median(reconcile_times)}


@dataclass(frozen=True)
class Ceiling:
    """Events/s landed and json.loads'ed, by wall clock and by CPU time (all of the process's
    threads, DuckDB's included), which a machine shared with other work disturbs far less."""

    landed_wall: float
    landed_cpu: float
    loads_wall: float
    loads_cpu: float


def _rates(count: int, action: Callable[[], None]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return count / (time.perf_counter() - wall), count / (time.process_time() - cpu)


def ceiling(count: int = 100_000) -> Ceiling:
    """Landed events/s from KPL aggregates in memory, and json.loads events/s of the same payloads."""
    payloads = [r.data for r in events("c", END, count, 1_000_000)]
    aggregates = list(pack_records(UserRecord(f"M{i % 50}", p) for i, p in enumerate(payloads)))

    def load_json() -> None:
        for data in payloads:
            json.loads(data)

    loads_wall, loads_cpu = _rates(count, load_json)
    with tempfile.TemporaryDirectory(prefix="bench-ceiling-") as tmp:
        con = connect_lake(f"sqlite:{tmp}/catalog.sqlite", f"{tmp}/files/")
        ensure_schema(con)

        def land() -> None:
            records = [
                SourceRecord(u.data, f"{a}/{j}")
                for a, agg in enumerate(aggregates)
                for j, u in enumerate(deaggregate(agg.partition_key, agg.data))
            ]
            landed = 0
            for i in range(0, len(records), 10_000):
                batch = LandingBatch("bench", records[i : i + 10_000])
                landed += land_batch(con, batch, dedupe_window=WINDOW).landed
            assert landed == count, f"landed {landed} of {count}"

        landed_wall, landed_cpu = _rates(count, land)
        con.close()
    return Ceiling(landed_wall, landed_cpu, loads_wall, loads_cpu)


def _ceiling_line(c: Ceiling) -> str:
    return (
        f"landing ceiling (KPL from memory, one core): {c.landed_wall:,.0f} events/s "
        f"({c.landed_cpu:,.0f} per CPU second); json.loads: {c.loads_wall:,.0f} events/s "
        f"({c.loads_cpu:,.0f} per CPU second); landed/json.loads {c.landed_cpu / c.loads_cpu:.2f} by CPU time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[1_000_000, 10_000_000])
    parser.add_argument("--per-day", type=int, default=200_000, help="events per day of history")
    parser.add_argument("--build-batch", type=int, default=100_000)
    parser.add_argument("--ceiling-only", action="store_true", help="measure only the landing ceiling")
    args = parser.parse_args()
    measured_ceiling = ceiling()
    if args.ceiling_only:
        print(_ceiling_line(measured_ceiling))
        return
    small, large = (measure(size, args.per_day, args.build_batch) for size in args.sizes)
    print(f"{'figure':<44} {'1x':>10} {'10x':>10} {'ratio':>7}")
    ratios = []
    for name, key in (
        ("history build (s)", "build_s"),
        ("landing batch of 5,000 (s)", "landing_s"),
        ("reconciliation after an hour (s)", "reconcile_s"),
    ):
        ratio = large[key] / small[key]
        if key != "build_s":
            ratios.append(ratio)
        print(f"{name:<44} {small[key]:>10.3f} {large[key]:>10.3f} {ratio:>7.2f}")
    print(_ceiling_line(measured_ceiling))
    print(f"history {args.sizes[0]:,} vs {args.sizes[1]:,} events: largest ratio {max(ratios):.2f}")


if __name__ == "__main__":
    main()
