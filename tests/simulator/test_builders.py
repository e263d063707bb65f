"""Events built by the simulator are valid, byte-identical to the codec's, and deterministic."""

from __future__ import annotations

from collections import Counter

import pytest

from cdr_platform.events import EVENT_CLASSES, encode_event
from cdr_platform.simulator.builders import produce, stream_of
from cdr_platform.simulator.model import OperatorConfig, build_operator
from cdr_platform.simulator.traffic import CallRecord, lifecycle_records, operator_day
from tests.simulator.conftest import START

pytestmark = pytest.mark.unit


def _day_events(seed: int, members: int = 300) -> list:
    operator = build_operator(
        OperatorConfig(seed=seed, members=members, churn_share=0.1, plan_change_share=0.1), START, 1
    )
    records = [*operator_day(operator, 0), *(c for m in operator.members for c in lifecycle_records(m))]
    return produce(records)


def test_every_event_parses_back_to_the_same_bytes() -> None:
    events = _day_events(seed=3, members=400)
    assert set(Counter(e.event_type for e in events)) == set(EVENT_CLASSES)  # every type covered
    for produced in events:
        event = produced.to_event()
        assert encode_event(event) == produced.data
        assert str(event.event_id) == produced.event_id and event.member_id == produced.member_id


def test_same_seed_gives_identical_events_and_another_seed_different_ids() -> None:
    first, again, other = _day_events(seed=5), _day_events(seed=5), _day_events(seed=6)
    assert [(e.event_id, e.data, e.stream) for e in first] == [(e.event_id, e.data, e.stream) for e in again]
    assert {e.event_id for e in first}.isdisjoint(e.event_id for e in other)
    assert len({e.event_id for e in first}) == len(first)


def test_streams_hold_one_transaction_and_rating_follows_its_usage() -> None:
    operator = build_operator(OperatorConfig(members=100), START, 1)
    call = next(r for r in operator_day(operator, 0) if isinstance(r, CallRecord) and r.outcome == "dropped")
    events = produce([call])
    assert {e.stream for e in events} == {stream_of(call)} and stream_of(call).startswith("call-S42-")
    assert [e.event_type for e in events] == [
        "call_attempted",
        "call_answered",
        "call_dropped",
        "usage_rated",
    ]
    dropped, rated = events[2].to_event(), events[3].to_event()
    assert dropped.payload.cell_id == call.last_cell.cell_id  # type: ignore[attr-defined]
    assert rated.payload.rated_event_id == dropped.event_id  # type: ignore[attr-defined]
    assert rated.correlation_id == call.call_id
