"""Benchmark: how the cost of each lake step grows with history, at 1M and at 10M events.

The traffic is one realistic day (``tests/transform/dataset.generate_events``: ``--members``
members' calls, SMS, data sessions, ratings and top-ups, ~19 usage events per member a day),
repeated day after day with new event ids, after the members' lifecycle events. For each history
size, in a fresh DuckLake warehouse: land the first day straight through the landing code
(``land_batch``, big batches, event time in order) and its copies for the later days in SQL (the
same rows the landing code would write for them, one transaction per day: fast enough for 10M
events in minutes), compact it as the maintenance job would, run
the first (full) reconciliation and the first (full) ``dbt run``, which are setup, then time
(the traffic continues where the history stopped):

1. one landing batch of 5,000 live events;
2. one incremental reconciliation run after an hour of new traffic (the EventStoreDB index is
   written into the lake as ``refresh_index`` would, and the client is a stand-in that has nothing
   newer, so the figure is the lake side);
3. one incremental ``dbt build`` of the whole project (models and tests) after an hour of new
   traffic (the first ``dbt run`` over the history is setup);
4. an analyst's query on a mart: revenue per day for the last 7 days (``fct_revenue_daily``).

Beside them, the landing's own ceiling with no endpoint in the way: KPL-aggregated records from
memory, de-aggregated, parsed and committed, in events/s on one core, against plain ``json.loads``
of the same payloads. Prints a table, dbt's slowest nodes at the larger size, and, last, the largest
ratio 10M/1M (target <= 1.3).

Run: ``.venv/bin/python bench/scale.py [--sizes 1000000 10000000] [--members 10000]``;
``--ceiling-only`` measures the landing ceiling alone (a few seconds); ``--no-dbt`` skips 3 and 4.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb

from cdr_platform.defs.resources import LakeResource
from cdr_platform.defs.transform.project import dbt_cli, dbt_project
from cdr_platform.events import MEMBER_EVENT_TYPES, Event, encode_event
from cdr_platform.events.framing import UserRecord, deaggregate, pack_records
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.landing import LandingBatch, ShardCheckpoint, SourceRecord, land_batch
from cdr_platform.lake.maintenance import maintain_lake
from cdr_platform.lake.reconciliation import reconcile_usage_events
from cdr_platform.lake.schema import ensure_schema
from tests.events.samples import build_event
from tests.transform.dataset import generate_events

WINDOW = timedelta(hours=6)
NAMESPACE = uuid.UUID("0b6f6a52-5f7e-4d7e-9a55-1f3c5d8e2a10")
END = datetime(2026, 1, 1, tzinfo=UTC)
SHARD = "shardId-000000000000"
DAY_END = datetime(2025, 1, 1, 23, 59, 59, tzinfo=UTC)  # the traffic's first day
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


class Traffic:
    """One day of realistic traffic as text templates, replayed day after day with new event ids.

    Copy ``k`` of the day is shifted ``k`` days later and its event ids (and the ids its ratings
    point at) start with ``k`` in hex, so every copy is new, valid (still UUIDv5) and consistent.
    """

    def __init__(self, members: int) -> None:
        events = generate_events(days=1, members=members, end=DAY_END)
        lifecycle = [e for e in events if e.event_type in MEMBER_EVENT_TYPES]
        usage = [e for e in events if e.event_type not in MEMBER_EVENT_TYPES]
        usage.sort(key=lambda e: e.occurred_at)
        self.members = [SourceRecord(encode_event(e), f"member/{i}") for i, e in enumerate(lifecycle)]
        self.templates = [self._template(e) for e in usage]
        self.hour = len(self.templates) // 24
        self._dates: dict[tuple[str, int], str] = {}

    @staticmethod
    def _template(event: Event) -> tuple[str, str]:
        """The event's text as a format string ({0}: id prefix, {1}: date), and its date."""
        text = encode_event(event).decode().replace("{", "{{").replace("}", "}}")
        ids = [str(event.event_id), *re.findall(r'"rated_event_id":"([0-9a-f-]{36})"', text)]
        for found in ids:
            text = text.replace(found, "{0}" + found[8:])
        date = event.occurred_at.strftime("%Y-%m-%d")
        return text.replace(f'"occurred_at":"{date}', '"occurred_at":"{1}'), date

    def _date(self, date: str, copy: int) -> str:
        key = (date, copy)
        if key not in self._dates:
            self._dates[key] = (datetime.fromisoformat(date) + timedelta(days=copy)).strftime("%Y-%m-%d")
        return self._dates[key]

    def stream(self, first_copy: int = 0) -> Iterator[SourceRecord]:
        """Usage events in event-time order, from copy ``first_copy`` on, without end, positioned as
        records of one Kinesis shard."""
        sequence = itertools.count(first_copy * len(self.templates) + 1)
        for copy in itertools.count(first_copy):
            prefix = f"{copy:08x}"
            for text, date in self.templates:
                data = text.format(prefix, self._date(date, copy)).encode()
                yield SourceRecord(data, f"{SHARD}/{next(sequence):021d}/0")


def copy_days(con: duckdb.DuckDBPyConnection, traffic: Traffic, copies: range) -> None:
    """Copies of the first day, already landed through the landing code, made in SQL, one
    transaction (one file per day partition) each: what ``Traffic.stream`` would yield for them
    (new ids with the copy's prefix, event times ``k`` days later, later shard positions)."""
    first_day_end = DAY_END + timedelta(days=1)
    for k in copies:
        prefix = f"{k:08x}"
        con.execute(
            """
            INSERT INTO raw.usage_events
            SELECT CAST(? || substr(CAST(event_id AS VARCHAR), 9) AS UUID), event_type, schema_version,
                   occurred_at + to_days(CAST(? AS INTEGER)), member_id, correlation_id, producer,
                   CASE WHEN event_type = 'usage_rated' THEN CAST(replace(CAST(payload AS VARCHAR),
                       '"rated_event_id":"00000000', '"rated_event_id":"' || ?) AS JSON) ELSE payload END,
                   source,
                   split_part(source_position, '/', 1) || '/'
                       || lpad(CAST(CAST(split_part(source_position, '/', 2) AS BIGINT) + ? AS VARCHAR),
                               21, '0')
                       || '/0',
                   now()
            FROM raw.usage_events
            WHERE occurred_at < ? AND source = 'kinesis'
                AND starts_with(CAST(event_id AS VARCHAR), '00000000')
            """,
            [prefix, k, prefix, k * len(traffic.templates), first_day_end],
        )


def kinesis_batch(records: list[SourceRecord]) -> LandingBatch:
    """The records as the Kinesis landing commits them: with the shard's checkpoint, which the
    executives' as-of time (the landed watermark of the open shards) reads."""
    if not records or not records[-1].position.startswith(SHARD):
        return LandingBatch("bench", records)  # the members' lifecycle events
    checkpoint = ShardCheckpoint("bench", SHARD, records[-1].position.split("/")[1])
    return LandingBatch("kinesis", records, shard_checkpoints=[checkpoint])


def land_all(con: duckdb.DuckDBPyConnection, records: Iterable[SourceRecord], batch: int) -> int:
    chunk: list[SourceRecord] = []
    landed = 0
    for record in records:
        chunk.append(record)
        if len(chunk) == batch:
            landed += land_batch(con, kinesis_batch(chunk), dedupe_window=WINDOW).landed
            chunk = []
    if chunk:
        landed += land_batch(con, kinesis_batch(chunk), dedupe_window=WINDOW).landed
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


def timed(action: Callable[[], object], repeat: int = 3) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def dbt_build(root: Path, command: str = "build") -> tuple[float, dict[str, float]]:
    """Wall time of one ``dbt build`` (a subprocess, as the Dagster automation runs it), and each
    node's own execution time from its run_results.json."""
    target = root / f"target-{time.monotonic_ns()}"
    started = time.perf_counter()
    invocation = dbt_cli(dbt_project()).cli([command], target_path=target, raise_on_error=False).wait()
    elapsed = time.perf_counter() - started
    results = json.loads((target / "run_results.json").read_text())["results"]
    failed = [r["unique_id"] for r in results if r["status"] not in ("success", "pass", "warn", "no-op")]
    if not invocation.is_successful():
        print(f"dbt build: {len(failed)} node(s) failed, still timed: {failed}; see {target / 'dbt.log'}")
    return elapsed, {r["unique_id"]: r["execution_time"] for r in results}


REVENUE_LAST_7_DAYS = """
    SELECT revenue_date, revenue_micros, arpu_micros FROM lake.marts.fct_revenue_daily
    WHERE revenue_date > (SELECT max(revenue_date) FROM lake.marts.fct_revenue_daily) - 7
    ORDER BY revenue_date
"""


def measure(size: int, traffic: Traffic, build_batch: int, with_dbt: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        lake = LakeResource(catalog=f"sqlite:{tmp}/catalog.sqlite", data_path=f"{tmp}/files/")
        con = connect_lake(lake.catalog, lake.data_path)
        ensure_schema(con)
        copies = max(1, round(size / len(traffic.templates)))
        started = time.perf_counter()
        land_all(con, traffic.members, build_batch)
        land_all(con, itertools.islice(traffic.stream(), len(traffic.templates)), build_batch)
        copy_days(con, traffic, range(1, copies))
        stream = traffic.stream(copies)
        index_new_rows(con)
        maintain_lake(con, timedelta(0), datetime.now(UTC))
        reconcile_usage_events(con, NothingNewer(), datetime.now(UTC) + timedelta(hours=1))  # full, first
        build_s = time.perf_counter() - started
        result: dict[str, object] = {"build_s": build_s, "events": copies * len(traffic.templates)}

        def land_live_batch() -> None:
            land_batch(con, kinesis_batch(list(itertools.islice(stream, 5000))), dedupe_window=WINDOW)

        result["landing_s"] = timed(land_live_batch)

        def reconcile_after_an_hour() -> float:
            land_all(con, itertools.islice(stream, traffic.hour), 5000)
            index_new_rows(con)
            started = time.perf_counter()
            reconcile_usage_events(
                con, NothingNewer(), datetime.now(UTC) + timedelta(hours=1), lookback=timedelta(hours=6)
            )
            return time.perf_counter() - started

        result["reconcile_s"] = statistics.median(reconcile_after_an_hour() for _ in range(3))
        if with_dbt:
            with lake.dbt_environment():
                # setup: the models over the history (their tests run with the measured build)
                result["first_dbt_s"] = dbt_build(Path(tmp), "run")[0]
                land_all(con, itertools.islice(stream, traffic.hour), 5000)
                result["dbt_s"], result["dbt_nodes"] = dbt_build(Path(tmp))
                result["query_s"] = timed(lambda: con.execute(REVENUE_LAST_7_DAYS).fetchall(), repeat=21)
        con.close()
        return result


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


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """Keep what exists before the measurement (imported modules, the bench's 100k payloads and
    aggregates) out of the cyclic GC's full collections, as a long-lived landing worker would after
    start-up (``gc.freeze``): otherwise each full collection walks ~0.3M objects that are not the
    landing's, and the figure measures the bench's heap."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def ceiling(count: int = 100_000) -> Ceiling:
    """Landed events/s from KPL aggregates in memory, and json.loads events/s of the same payloads."""
    payloads = [r.data for r in events("c", END, count, 1_000_000)]
    aggregates = list(pack_records(UserRecord(f"M{i % 50}", p) for i, p in enumerate(payloads)))

    def load_json() -> None:
        for data in payloads:
            json.loads(data)

    loads_wall, loads_cpu = _rates(count, load_json)
    with tempfile.TemporaryDirectory(prefix="bench-ceiling-") as tmp, _frozen_heap():
        con = connect_lake(f"sqlite:{tmp}/catalog.sqlite", f"{tmp}/files/")
        ensure_schema(con)
        con.execute("SET threads = 1")  # one core, as the figure says (DuckDB's threads count in CPU time)

        def land() -> None:
            """Page by page, as a Kinesis reader lands each GetRecords page (~10,000 events each)."""
            landed, page = 0, []
            for a, agg in enumerate(aggregates):
                page += [
                    SourceRecord(u.data, f"{a}/{j}")
                    for j, u in enumerate(deaggregate(agg.partition_key, agg.data))
                ]
                if len(page) >= 10_000 or a == len(aggregates) - 1:
                    landed += land_batch(con, LandingBatch("bench", page), dedupe_window=WINDOW).landed
                    page = []
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


FIGURES = (
    ("history build (s, setup)", "build_s"),
    ("first dbt run over the history (s, setup)", "first_dbt_s"),
    ("landing batch of 5,000 (s)", "landing_s"),
    ("reconciliation after an hour (s)", "reconcile_s"),
    ("incremental dbt build after an hour (s)", "dbt_s"),
    ("revenue per day, last 7 days (s)", "query_s"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[1_000_000, 10_000_000])
    parser.add_argument("--members", type=int, default=10_000, help="members (~19 usage events each a day)")
    parser.add_argument("--build-batch", type=int, default=100_000)
    parser.add_argument("--no-dbt", action="store_true", help="skip the dbt build and the mart query")
    parser.add_argument("--ceiling-only", action="store_true", help="measure only the landing ceiling")
    args = parser.parse_args()
    measured_ceiling = ceiling()
    if args.ceiling_only:
        print(_ceiling_line(measured_ceiling))
        return
    traffic = Traffic(args.members)
    small, large = (measure(size, traffic, args.build_batch, not args.no_dbt) for size in args.sizes)
    days = [size / len(traffic.templates) for size in args.sizes]
    print(f"{len(traffic.templates):,} usage events a day; history {days[0]:.1f} and {days[1]:.1f} days")
    print(f"{'figure':<46} {'1x':>10} {'10x':>10} {'ratio':>7}")
    ratios = []
    for name, key in FIGURES:
        if key not in small:
            continue
        ratio = large[key] / small[key]
        if "setup" not in name:
            ratios.append(ratio)
        print(f"{name:<46} {small[key]:>10.3f} {large[key]:>10.3f} {ratio:>7.2f}")
    if "dbt_nodes" in large:
        print("dbt nodes at 10x, slowest first (s at 1x, s at 10x):")
        slowest = sorted(large["dbt_nodes"].items(), key=lambda item: -item[1])[:12]
        for node, seconds in slowest:
            print(f"  {node:<70} {small['dbt_nodes'].get(node, 0.0):>7.2f} {seconds:>7.2f}")
    print(_ceiling_line(measured_ceiling))
    print(f"history {args.sizes[0]:,} vs {args.sizes[1]:,} events: largest ratio {max(ratios):.2f}")


if __name__ == "__main__":
    main()
