"""land_batch: rows, dead letters and checkpoints commit together, and each event lands once."""

from __future__ import annotations

import duckdb
import pytest

from cdr_platform.events import encode_event
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.landing import (
    EventStoreCheckpoint,
    LandingBatch,
    ShardCheckpoint,
    SourceRecord,
    land_batch,
    load_eventstore_checkpoint,
    load_shard_checkpoints,
)
from tests.events.samples import build_event

pytestmark = pytest.mark.unit


def _records(*events_and_positions: tuple[object, str]) -> list[SourceRecord]:
    return [SourceRecord(encode_event(e), pos) for e, pos in events_and_positions]  # type: ignore[arg-type]


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_events_route_to_their_table_and_land_once(lake: duckdb.DuckDBPyConnection) -> None:
    call = build_event("call_ended", "c1")
    member = build_event("member_activated", "m1")
    first = land_batch(
        lake, LandingBatch("kinesis", _records((call, "s/1/0"), (member, "s/2/0"), (call, "s/3/0")))
    )
    assert (first.landed_usage, first.landed_member, first.duplicates) == (1, 1, 1)

    again = land_batch(lake, LandingBatch("eventstore", _records((call, "42"), (member, "43"))))
    assert (again.landed, again.duplicates) == (0, 2)
    assert _count(lake, "raw.usage_events") == 1
    source, position = lake.execute("SELECT source, source_position FROM raw.usage_events").fetchone()
    assert (source, position) == ("kinesis", "s/1/0")  # the first sighting is kept


def test_rejections_go_to_dead_letter_once_with_reason(lake: duckdb.DuckDBPyConnection) -> None:
    bad = [SourceRecord(b"not json", "s/9/0"), SourceRecord(b'{"event_type": "call_teleported"}', "s/9/1")]
    result = land_batch(lake, LandingBatch("kinesis", bad))
    assert result.dead_lettered == 2
    land_batch(lake, LandingBatch("kinesis", bad))  # redelivered
    rows = lake.execute("SELECT source_position, reason, raw_data FROM raw.dead_letter ORDER BY 1").fetchall()
    assert [(p, r) for p, r, _ in rows] == [("s/9/0", "not_json"), ("s/9/1", "unknown_event_type")]
    assert rows[0][2] == b"not json"


def test_checkpoints_commit_with_rows(lake: duckdb.DuckDBPyConnection) -> None:
    batch = LandingBatch(
        "kinesis",
        _records((build_event("call_ended", "c2"), "shard-0/7/0")),
        shard_checkpoints=[ShardCheckpoint("usage", "shard-0", "7", False)],
        eventstore_checkpoint=EventStoreCheckpoint("members", 1234),
    )
    land_batch(lake, batch)
    assert load_shard_checkpoints(lake, "usage")["shard-0"].sequence_number == "7"
    assert load_eventstore_checkpoint(lake, "members") == 1234


def test_failure_before_commit_lands_nothing(lake: duckdb.DuckDBPyConnection) -> None:
    batch = LandingBatch(
        "kinesis",
        _records((build_event("call_ended", "c3"), "shard-0/8/0")),
        shard_checkpoints=[ShardCheckpoint("usage", "shard-0", "8", False)],
    )
    lake.execute("DROP TABLE meta.kinesis_checkpoints")  # the checkpoint write fails after the rows
    with pytest.raises(duckdb.Error):
        land_batch(lake, batch)
    assert _count(lake, "raw.usage_events") == 0


def test_readers_in_other_processes_see_committed_rows(lake: duckdb.DuckDBPyConnection, lake_paths) -> None:
    land_batch(lake, LandingBatch("kinesis", _records((build_event("call_ended", "c4"), "s/1/0"))))
    reader = connect_lake(*lake_paths, read_only=True)
    try:
        assert _count(reader, "raw.usage_events") == 1
    finally:
        reader.close()


def test_same_event_id_with_a_new_event_time_lands_once(lake: duckdb.DuckDBPyConnection) -> None:
    from datetime import timedelta

    first = build_event("call_ended", "retried")
    retried = first.model_copy(update={"occurred_at": first.occurred_at + timedelta(hours=3)})
    land_batch(lake, LandingBatch("kinesis", _records((first, "s/1/0"))))
    again = land_batch(lake, LandingBatch("eventstore", _records((retried, "77"))))
    assert (again.landed, again.duplicates) == (0, 1)
    assert _count(lake, "raw.usage_events") == 1


def test_production_lake_extensions_come_from_pinned_wheels() -> None:
    """A Postgres catalog and an S3 data path load their extensions from wheels, with no download."""
    from cdr_platform.lake.connection import load_extensions, needed_extensions

    assert needed_extensions("postgres:dbname=lake", "s3://bucket/lake/") == [
        "ducklake",
        "postgres_scanner",
        "httpfs",
    ]
    con = duckdb.connect()
    load_extensions(con, "postgres:dbname=lake", "s3://bucket/lake/")
    loaded = {
        r[0] for r in con.execute("SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()
    }
    assert {"ducklake", "postgres_scanner", "httpfs"} <= loaded
