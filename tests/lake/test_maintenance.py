"""Lake maintenance keeps the file count bounded under live landing, and every row stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from cdr_platform.events import encode_event
from cdr_platform.lake.landing import LandingBatch, SourceRecord, land_batch
from cdr_platform.lake.maintenance import maintain_lake, table_files
from tests.events.samples import build_event

pytestmark = pytest.mark.unit

BATCHES = 25
PER_BATCH = 30


def _files_on_disk(data_path: str, table: str) -> int:
    return sum(1 for _ in Path(data_path, *table.split(".")).rglob("*.parquet"))


def _land_live_traffic(con: duckdb.DuckDBPyConnection, start: int = 0, count: int = BATCHES) -> None:
    for b in range(start, start + count):
        events = [build_event("call_ended", f"live-{b}-{i}") for i in range(PER_BATCH)]
        records = [SourceRecord(encode_event(e), f"s/{b}/{i}") for i, e in enumerate(events)]
        land_batch(con, LandingBatch("kinesis", records), dedupe_window=timedelta(hours=6))


def test_maintenance_bounds_files_and_keeps_every_row(lake: duckdb.DuckDBPyConnection, lake_paths) -> None:
    _, data_path = lake_paths
    _land_live_traffic(lake)
    rows_before = lake.execute("SELECT count(*), count(DISTINCT event_id) FROM raw.usage_events").fetchone()
    days = lake.execute("SELECT count(DISTINCT occurred_at::DATE) FROM raw.usage_events").fetchone()[0]
    assert rows_before == (BATCHES * PER_BATCH, BATCHES * PER_BATCH)
    assert _files_on_disk(data_path, "raw.usage_events") >= BATCHES  # one small file per batch at least

    report = maintain_lake(lake, retention=timedelta(0), now=datetime.now(UTC) + timedelta(seconds=1))

    after = {t.table: t for t in report.after}
    assert after["raw.usage_events"].files <= days  # one file per day partition
    assert _files_on_disk(data_path, "raw.usage_events") <= days  # the small files are gone from disk
    assert report.snapshots_after <= 2 < report.snapshots_before  # the current one (and the merge's)
    assert report.files_deleted >= BATCHES
    assert (
        lake.execute("SELECT count(*), count(DISTINCT event_id) FROM raw.usage_events").fetchone()
        == rows_before
    )

    # Live traffic continues: the next run brings the count back to the same bound.
    _land_live_traffic(lake, start=BATCHES)
    maintain_lake(lake, retention=timedelta(0), now=datetime.now(UTC) + timedelta(seconds=1))
    assert {t.table: t for t in table_files(lake)}["raw.usage_events"].files <= days
    assert lake.execute("SELECT count(*) FROM raw.usage_events").fetchone()[0] == 2 * BATCHES * PER_BATCH


def test_snapshots_within_the_retention_keep_time_travel(lake: duckdb.DuckDBPyConnection) -> None:
    _land_live_traffic(lake, count=3)
    middle = lake.execute("SELECT id FROM ducklake_current_snapshot('lake')").fetchone()[0]
    _land_live_traffic(lake, start=3, count=3)
    snapshots = lake.execute("SELECT count(*) FROM ducklake_snapshots('lake')").fetchone()[0]
    maintain_lake(lake, retention=timedelta(hours=1), now=datetime.now(UTC))
    assert lake.execute("SELECT count(*) FROM ducklake_snapshots('lake')").fetchone()[0] >= snapshots
    at_middle = lake.execute(f"SELECT count(*) FROM raw.usage_events AT (VERSION => {middle})").fetchone()[0]
    assert at_middle == 3 * PER_BATCH
    assert lake.execute("SELECT count(*) FROM raw.usage_events").fetchone()[0] == 6 * PER_BATCH
