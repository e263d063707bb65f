"""Distributions of generated traffic stay within the configured rates, over samples large enough."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import pytest

from cdr_platform.simulator.model import OperatorConfig, build_operator
from cdr_platform.simulator.traffic import (
    CallRecord,
    DataSessionRecord,
    SmsRecord,
    member_day,
    operator_day,
)
from tests.simulator.conftest import START

pytestmark = pytest.mark.unit


def _within(observed: int, trials: int, rate: float, sigmas: float = 4.0) -> bool:
    return abs(observed / trials - rate) <= sigmas * math.sqrt(rate * (1 - rate) / trials) + 1e-3


def _calls(config: OperatorConfig, days: int = 1) -> list[CallRecord]:
    operator = build_operator(config, START, days)
    return [r for day in range(days) for r in operator_day(operator, day) if isinstance(r, CallRecord)]


def test_call_outcomes_follow_answer_busy_and_congestion_rates() -> None:
    config = OperatorConfig(
        members=3000, calls_per_day=8, answer_ratio=0.7, busy_ratio=0.1, churn_share=0, prepaid_share=0
    )
    calls = _calls(config)
    outcomes = Counter(c.outcome for c in calls)
    not_congested = len(calls) - outcomes["congestion"]
    assert not_congested > 15_000
    assert _within(outcomes["completed"] + outcomes["dropped"], not_congested, 0.7)
    assert _within(outcomes["busy"], not_congested, 0.1)
    by_cell: dict[str, list[bool]] = defaultdict(list)
    for call in calls:
        by_cell[call.first_cell.cell_id].append(call.outcome == "congestion")
    congested = {c.cell_id: c for c in build_operator(config, START, 1).cells}
    for cell_id, failures in by_cell.items():
        if len(failures) > 200:
            assert _within(sum(failures), len(failures), congested[cell_id].congestion_failure_rate), cell_id


def test_drop_rate_per_cell_matches_the_cell() -> None:
    config = OperatorConfig(
        members=3000, cells=20, location_areas=4, calls_per_day=10, churn_share=0, prepaid_share=0
    )
    operator = build_operator(config, START, 1)
    answered: dict[int, list[bool]] = defaultdict(list)
    for call in _calls(config):
        if call.answered_at is not None:
            answered[call.last_cell.index].append(call.outcome == "dropped")
    checked = 0
    for cell in operator.cells:
        outcomes = answered[cell.index]
        if len(outcomes) >= 500:
            checked += 1
            assert _within(sum(outcomes), len(outcomes), cell.drop_rate), cell
    assert checked >= 15


def test_durations_are_heavy_tailed_and_data_volumes_positive() -> None:
    operator = build_operator(OperatorConfig(members=1500, churn_share=0, prepaid_share=0), START, 1)
    records = operator_day(operator, 0)
    durations = sorted(
        r.duration_s for r in records if isinstance(r, CallRecord) and r.outcome == "completed"
    )
    median, p99 = durations[len(durations) // 2], durations[int(len(durations) * 0.99)]
    assert 70 < median < 110
    assert p99 > 8 * median  # log-normal tail, far beyond a normal distribution's
    sessions = [r for r in records if isinstance(r, DataSessionRecord)]
    assert sessions and all(r.downlink_bytes > 0 and r.ended_at > r.started_at for r in sessions)
    sms = [r for r in records if isinstance(r, SmsRecord)]
    assert _within(sum(r.delivered for r in sms), len(sms), operator.config.sms_delivery_ratio)


def test_traffic_follows_the_daily_curve() -> None:
    operator = build_operator(OperatorConfig(members=1000, churn_share=0), START, 1)
    hours = Counter(r.attempted_at.hour for r in operator_day(operator, 0) if isinstance(r, CallRecord))
    assert hours[18] > 5 * hours[3]


def test_member_days_do_not_depend_on_what_else_is_generated() -> None:
    small = build_operator(OperatorConfig(members=10), START, 2)
    large = build_operator(OperatorConfig(members=10), START, 5)
    assert member_day(small, small.members[3], 1) == member_day(large, large.members[3], 1)
    # a prepaid day carries the balance of the days before it, whatever order days are asked for in
    fresh = build_operator(OperatorConfig(members=10), START, 5)
    in_order = [member_day(large, large.members[3], day) for day in range(5)]
    assert member_day(fresh, fresh.members[3], 4) == in_order[4]
