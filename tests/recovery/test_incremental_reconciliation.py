"""Incremental reconciliation: each run judges only the hours changed since its last run, plus a
look-back; a late event in an old hour is still found; a full re-check stays available."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from esdbclient import EventStoreDBClient

from cdr_platform.events import Event, encode_event
from cdr_platform.lake.landing import LandingBatch, SourceRecord, land_batch
from cdr_platform.lake.reconciliation import reconcile_usage_events
from tests.events.samples import build_event
from tests.eventstore_helpers import append_events
from tests.kinesis_helpers import usage_events

pytestmark = pytest.mark.integration


def later() -> datetime:
    """A settle time just after now: everything appended so far counts as settled (read when used,
    since a module-level value goes stale when the suite reaches this file minutes later)."""
    return datetime.now(UTC) + timedelta(minutes=5)


LOOKBACK = timedelta(hours=1)


@pytest.fixture
def esdb(fresh_eventstore_uri: str) -> Iterator[EventStoreDBClient]:
    client = EventStoreDBClient(uri=fresh_eventstore_uri)
    yield client
    client.close()


def _shifted(events: list[Event], by: timedelta) -> list[Event]:
    return [e.model_copy(update={"occurred_at": e.occurred_at + by}) for e in events]


def _land(con: duckdb.DuckDBPyConnection, events: list[Event]) -> None:
    records = [SourceRecord(encode_event(e), f"s/{e.event_id}") for e in events]
    land_batch(con, LandingBatch("kinesis", records), dedupe_window=timedelta(hours=6))


def _hours(report) -> set[datetime]:
    return {h.hour for h in report.hours}


def test_runs_judge_changed_hours_and_find_a_late_event(lake: duckdb.DuckDBPyConnection, esdb) -> None:
    old = usage_events(60, prefix="old")  # one old hour of history
    append_events(esdb, old)
    _land(lake, old[:-2])
    first = reconcile_usage_events(lake, esdb, later(), lookback=LOOKBACK)  # no checkpoint yet: every hour
    assert first.repaired == 2 and first.ok and sum(h.repaired for h in first.hours) == 2
    old_hour = first.hours[0].hour

    # New traffic three days on, and a late event for an old hour two hours after the history,
    # lost on its way to Kinesis.
    new = _shifted(usage_events(40, prefix="new"), timedelta(days=3))
    late = _shifted(usage_events(1, prefix="late"), timedelta(hours=2))
    append_events(esdb, [*new, *late])
    _land(lake, new)
    second = reconcile_usage_events(lake, esdb, later(), lookback=LOOKBACK)
    new_hours = {e.occurred_at.replace(minute=0, second=0, microsecond=0) for e in new}
    late_hour = late[0].occurred_at.replace(minute=0, second=0, microsecond=0)
    assert _hours(second) == new_hours | {late_hour}  # the old, unchanged hour is not read again
    assert second.missing_event_ids == [str(late[0].event_id)] and second.repaired == 1 and second.ok
    # the repair is counted in its hour (the check reads only the hours with a gap)
    assert {h.hour: h.repaired for h in second.hours if h.repaired} == {late_hour: 1}

    # Nothing changed: nothing but the (empty) look-back is judged.
    assert reconcile_usage_events(lake, esdb, later(), lookback=LOOKBACK).hours == []

    # A row landed into an old hour that EventStoreDB does not hold is judged through the raw side.
    stranger = build_event("call_ended", "not-in-eventstore")
    _land(lake, [stranger])
    third = reconcile_usage_events(lake, esdb, later(), lookback=LOOKBACK)
    assert third.surplus_event_ids == [str(stranger.event_id)] and not third.ok

    full = reconcile_usage_events(lake, esdb, later(), full=True)
    assert old_hour in _hours(full) and full.surplus_event_ids == [str(stranger.event_id)]
    assert sum(h.in_eventstore for h in full.hours) == len(old) + len(new) + len(late)
