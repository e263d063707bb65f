"""EventStoreDB landing: filtered $all into raw/member_events, exactly once, position in the lake."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest
from esdbclient import EventStoreDBClient

from cdr_platform.lake.eventstore_landing import land_eventstore
from cdr_platform.lake.landing import load_eventstore_checkpoint
from tests.crashes import crash_on_call
from tests.eventstore_helpers import append_events, member_events
from tests.kinesis_helpers import usage_events

pytestmark = pytest.mark.integration
MEMBER_TYPES = ["member_activated", "plan_changed", "port_out_requested", "member_deactivated"]


@pytest.fixture
def esdb(fresh_eventstore_uri: str) -> Iterator[EventStoreDBClient]:
    client = EventStoreDBClient(uri=fresh_eventstore_uri)
    yield client
    client.close()


def _ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {str(r[0]) for r in con.execute("SELECT event_id FROM raw.member_events").fetchall()}


def test_lands_member_events_only_and_advances_past_filtered_stretches(
    lake: duckdb.DuckDBPyConnection, esdb: EventStoreDBClient
) -> None:
    members = member_events(30)
    append_events(esdb, members[:10] + usage_events(500, prefix="noise") + members[10:])
    report = land_eventstore(lake, esdb, "members", MEMBER_TYPES, batch_size=7)
    assert report.caught_up and report.landed == 30
    assert _ids(lake) == {str(e.event_id) for e in members}
    assert lake.execute("SELECT count(*) FROM raw.usage_events").fetchone()[0] == 0

    append_events(esdb, usage_events(300, prefix="more-noise"))
    quiet = land_eventstore(lake, esdb, "members", MEMBER_TYPES)
    assert quiet.received == 0
    # The stored position moved past the filtered-out events (checkpoints), so the next read skips them.
    position = load_eventstore_checkpoint(lake, "members")
    assert position is not None and position > report.position


def test_crash_before_commit_then_rerun_lands_exactly_once(
    lake: duckdb.DuckDBPyConnection, esdb: EventStoreDBClient
) -> None:
    members = member_events(40, prefix="crash")
    append_events(esdb, members)
    with pytest.raises(RuntimeError):
        land_eventstore(
            lake,
            esdb,
            "members",
            MEMBER_TYPES,
            batch_size=10,
            before_commit=crash_on_call(3, RuntimeError("crashed between reading and committing")),
        )
    assert len(_ids(lake)) == 20
    land_eventstore(lake, esdb, "members", MEMBER_TYPES, batch_size=10)
    assert _ids(lake) == {str(e.event_id) for e in members}
    assert lake.execute("SELECT count(*) FROM raw.member_events").fetchone()[0] == 40
