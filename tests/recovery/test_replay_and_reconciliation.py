"""Recovery from EventStoreDB: replay rebuilds the raw layer; reconciliation repairs lost records."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from esdbclient import EventStoreDBClient

from cdr_platform.events import encode_event
from cdr_platform.lake.kinesis_landing import land_kinesis_stream
from cdr_platform.lake.landing import LandingBatch, SourceRecord, land_batch
from cdr_platform.lake.reconciliation import reconcile_usage_events
from cdr_platform.lake.replay import ReplayRange, ReplayRangeError, replay_from_eventstore
from cdr_platform.sources.kinesis_client import kinesis_client
from tests.crashes import crash_on_call
from tests.events.samples import build_event
from tests.eventstore_helpers import append_events, member_events
from tests.kinesis_helpers import new_stream, put_events, usage_events

pytestmark = pytest.mark.integration


def later() -> datetime:
    """A settle time just after now: everything appended so far counts as settled (read when used,
    since a module-level value goes stale when the suite reaches this file minutes later)."""
    return datetime.now(UTC) + timedelta(minutes=5)


@pytest.fixture
def esdb(fresh_eventstore_uri: str) -> Iterator[EventStoreDBClient]:
    client = EventStoreDBClient(uri=fresh_eventstore_uri)
    yield client
    client.close()


def _table(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    return con.execute(
        f"SELECT event_id, event_type, occurred_at, payload FROM {table} ORDER BY event_id"
    ).fetchall()


def test_replay_into_an_empty_lake_reproduces_eventstore(lake: duckdb.DuckDBPyConnection, esdb) -> None:
    usage, members = usage_events(300, prefix="replay"), member_events(20)
    append_events(esdb, usage + members)
    report = replay_from_eventstore(lake, esdb, "full", page_size=64)
    assert report.landed == 320
    assert {str(r[0]) for r in _table(lake, "raw.usage_events")} == {str(e.event_id) for e in usage}
    assert {str(r[0]) for r in _table(lake, "raw.member_events")} == {str(e.event_id) for e in members}

    before = _table(lake, "raw.usage_events")
    again = replay_from_eventstore(lake, esdb, "second", page_size=64)
    assert (again.read, again.landed) == (320, 0)
    assert _table(lake, "raw.usage_events") == before


def test_replay_killed_halfway_resumes_and_ends_identical(
    lake: duckdb.DuckDBPyConnection, esdb, lake_paths
) -> None:
    usage = usage_events(250, prefix="resume")
    append_events(esdb, usage)
    with pytest.raises(KeyboardInterrupt):
        replay_from_eventstore(
            lake,
            esdb,
            "crashy",
            page_size=50,
            before_commit=crash_on_call(3, KeyboardInterrupt("replay killed")),
        )
    assert len(_table(lake, "raw.usage_events")) == 100
    resumed = replay_from_eventstore(lake, esdb, "crashy", page_size=50)
    assert resumed.resumed_from is not None
    assert resumed.read == 150  # only what had not committed
    assert {str(r[0]) for r in _table(lake, "raw.usage_events")} == {str(e.event_id) for e in usage}


def test_a_replay_name_cannot_resume_with_another_range(lake: duckdb.DuckDBPyConnection, esdb) -> None:
    append_events(esdb, usage_events(10, prefix="named"))
    replay_from_eventstore(lake, esdb, "named", ReplayRange(from_position=None, to_position=None))
    with pytest.raises(ReplayRangeError, match="was started with range"):
        replay_from_eventstore(lake, esdb, "named", ReplayRange(to_position=1))


def test_replay_of_a_time_range_lands_only_that_range(lake: duckdb.DuckDBPyConnection, esdb) -> None:
    usage = usage_events(100, prefix="window")  # one event per second from the sample time
    append_events(esdb, usage)
    start, end = usage[10].occurred_at, usage[20].occurred_at
    replay_from_eventstore(lake, esdb, "window", ReplayRange(occurred_from=start, occurred_to=end))
    assert {str(r[0]) for r in _table(lake, "raw.usage_events")} == {str(e.event_id) for e in usage[10:20]}


def test_replay_reprocesses_the_dead_letter(lake: duckdb.DuckDBPyConnection, esdb) -> None:
    good = build_event("call_ended", "fixed-later")
    raw = encode_event(good)
    # An old parser rejected it: simulate with a record the dead letter holds, whose bytes parse today.
    land_batch(lake, LandingBatch("kinesis", [SourceRecord(b"\xff" + raw, "s/1/0")]))
    lake.execute("UPDATE raw.dead_letter SET raw_data = ?", [raw])
    report = replay_from_eventstore(lake, esdb, "dl")
    assert report.dead_letter is not None and report.dead_letter.resolved == 1
    assert lake.execute("SELECT count(*) FROM raw.dead_letter WHERE resolved_at IS NULL").fetchone()[0] == 0
    assert str(lake.execute("SELECT event_id FROM raw.usage_events").fetchone()[0]) == str(good.event_id)


def test_reconciliation_repairs_dropped_records_and_reports_surplus(
    lake: duckdb.DuckDBPyConnection, esdb, kinesis_endpoint: str
) -> None:
    usage = usage_events(400, prefix="recon")
    append_events(esdb, usage)
    kinesis = kinesis_client("us-east-1", kinesis_endpoint)
    stream = new_stream(kinesis)
    dropped = usage[::50]  # 8 records lost between EventStoreDB and Kinesis
    put_events(kinesis, stream, [e for e in usage if e not in dropped])
    land_kinesis_stream(lake, kinesis, stream)

    report = reconcile_usage_events(lake, esdb, settled_before=later())
    assert sorted(report.missing_event_ids) == sorted(str(e.event_id) for e in dropped)
    assert report.repaired == len(dropped) and report.ok
    assert sum(h.missing for h in report.hours) == sum(h.repaired for h in report.hours) == len(dropped)
    landed = {str(r[0]) for r in lake.execute("SELECT event_id FROM raw.usage_events").fetchall()}
    assert landed == {str(e.event_id) for e in usage}

    stranger = build_event("call_ended", "not-in-eventstore")
    land_batch(lake, LandingBatch("kinesis", [SourceRecord(encode_event(stranger), "s/9/0")]))
    second = reconcile_usage_events(lake, esdb, settled_before=later())
    assert second.missing == 0
    assert second.surplus_event_ids == [str(stranger.event_id)]
    assert not second.ok
