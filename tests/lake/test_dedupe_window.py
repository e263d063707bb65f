"""The exactly-once check reads a bounded slice of event time: behaviour at the dedupe window's edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from cdr_platform.events import encode_event
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.landing import LandingBatch, SourceRecord, event_time_ranges, land_batch
from cdr_platform.lake.schema import ensure_schema
from tests.events.samples import build_event

pytestmark = pytest.mark.unit

WINDOW = timedelta(hours=6)


def _land(con: duckdb.DuckDBPyConnection, source: str, *events: object) -> tuple[int, int]:
    records = [SourceRecord(encode_event(e), f"{source}-{i}") for i, e in enumerate(events)]  # type: ignore[arg-type]
    result = land_batch(con, LandingBatch(source, records), dedupe_window=WINDOW)
    return result.landed, result.duplicates


def _ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [row[0] for row in con.execute("SELECT event_id::VARCHAR FROM raw.usage_events").fetchall()]


@pytest.mark.parametrize("shift", [WINDOW, -WINDOW, timedelta(0), timedelta(microseconds=1)])
def test_redelivery_within_the_window_lands_once(lake: duckdb.DuckDBPyConnection, shift: timedelta) -> None:
    first = build_event("call_ended", "edge")
    moved = first.model_copy(update={"occurred_at": first.occurred_at + shift})
    assert _land(lake, "kinesis", first) == (1, 0)
    assert _land(lake, "eventstore", moved) == (0, 1)
    row = lake.execute("SELECT source, occurred_at FROM raw.usage_events").fetchall()
    assert row == [("kinesis", first.occurred_at)]  # the first sighting wins


@pytest.mark.parametrize("shift", [WINDOW + timedelta(microseconds=1), -WINDOW - timedelta(seconds=1)])
def test_redelivery_outside_the_window_lands_a_second_row(
    lake: duckdb.DuckDBPyConnection, shift: timedelta
) -> None:
    """Documented limit (README): a sighting further than the window from the first is not recognised."""
    first = build_event("call_ended", "far")
    moved = first.model_copy(update={"occurred_at": first.occurred_at + shift})
    _land(lake, "kinesis", first)
    assert _land(lake, "replay", moved) == (1, 0)
    assert len(_ids(lake)) == 2


def test_a_batch_with_a_late_cluster_checks_each_slice(lake: duckdb.DuckDBPyConnection) -> None:
    """A live batch that carries an old late event still finds that event's earlier sighting."""
    old = build_event("call_ended", "late")
    live = build_event("call_ended", "live").model_copy(
        update={"occurred_at": old.occurred_at + timedelta(days=30)}
    )
    redelivered_old = old.model_copy(update={"occurred_at": old.occurred_at + timedelta(hours=1)})
    _land(lake, "kinesis", old)
    assert _land(lake, "kinesis", live, redelivered_old, live) == (1, 2)
    assert sorted(_ids(lake)) == sorted([str(old.event_id), str(live.event_id)])


def test_event_time_ranges_merge_overlaps() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    times = [t0 + timedelta(days=10), t0, t0 + timedelta(hours=11), t0 + timedelta(hours=13)]
    assert event_time_ranges(times, WINDOW) == [
        (t0 - WINDOW, t0 + timedelta(hours=13) + WINDOW),
        (t0 + timedelta(days=10) - WINDOW, t0 + timedelta(days=10) + WINDOW),
    ]


def test_raw_files_are_partitioned_by_event_day(lake: duckdb.DuckDBPyConnection) -> None:
    events = [build_event("call_ended", f"partitioned-{i}") for i in range(20)]
    assert _land(lake, "kinesis", *events) == (20, 0)
    lake.execute("CALL ducklake_flush_inlined_data('lake')")
    files = [
        Path(f)
        for (f,) in lake.execute(
            "SELECT data_file FROM ducklake_list_files('lake', 'usage_events', schema => 'raw')"
        ).fetchall()
    ]
    days = {f"day={e.occurred_at.astimezone(UTC).day}" for e in events}
    assert files and all(f.parent.name in days for f in files)


def test_ensure_schema_partitions_a_lake_created_before_partitioning(lake_paths: tuple[str, str]) -> None:
    con = connect_lake(*lake_paths)
    try:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.usage_events (event_id UUID, occurred_at TIMESTAMPTZ)")
        con.execute("INSERT INTO raw.usage_events VALUES (uuid(), now())")
        ensure_schema(con)
        ensure_schema(con)  # idempotent: no second ALTER
        keys = con.execute(
            "SELECT count(*) FROM __ducklake_metadata_lake.ducklake_partition_column"
        ).fetchone()[0]
        assert keys == 9  # year, month, day of three tables
        assert con.execute("SELECT count(*) FROM raw.usage_events").fetchone()[0] == 1
    finally:
        con.close()
