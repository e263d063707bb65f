"""Distributions of generated traffic stay within the configured rates, over samples large enough."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import timedelta

import pytest

from cdr_platform.simulator.model import OperatorConfig, build_operator
from cdr_platform.simulator.traffic import (
    CallRecord,
    DataSessionRecord,
    SmsRecord,
    TopupRecord,
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
    config = OperatorConfig(members=3000, calls_per_day=8, answer_ratio=0.7, busy_ratio=0.1, churn_share=0)
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
    config = OperatorConfig(members=3000, cells=20, location_areas=4, calls_per_day=10, churn_share=0)
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
    operator = build_operator(OperatorConfig(members=1500, churn_share=0), START, 1)
    records = operator_day(operator, 0)
    durations = sorted(
        r.duration_s for r in records if isinstance(r, CallRecord) and r.outcome == "completed"
    )
    median, p99 = durations[len(durations) // 2], durations[int(len(durations) * 0.99)]
    assert 55 < median < 100
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


def test_churners_decline_drop_more_top_up_less_and_go_quiet_before_churning() -> None:
    config = OperatorConfig(members=800, churn_share=0.25, prepaid_share=1.0, topups_per_week=4)
    days = 14
    operator = build_operator(config, START, days)
    usage: dict[str, list[int]] = {m.member_id: [0] * days for m in operator.members}
    topups: Counter[str] = Counter()
    answered: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    for day in range(days):
        for member in operator.members:
            for record in member_day(operator, member, day):
                if isinstance(record, TopupRecord):
                    topups[member.member_id] += 1
                    continue
                usage[member.member_id][day] += 1
                if isinstance(record, CallRecord) and record.answered_at is not None:
                    answered[member.member_id] += 1
                    dropped[member.member_id] += record.outcome == "dropped"
    late_churners = [
        m for m in operator.members if m.churn_at and m.churn_at >= operator.start + timedelta(days=12)
    ]
    stayers = [m for m in operator.members if m.churn_at is None]
    assert len(late_churners) > 20

    def trend(members: list) -> float:  # usage in days 6-9 over usage in days 0-3
        early = sum(sum(usage[m.member_id][0:4]) for m in members)
        late = sum(sum(usage[m.member_id][6:10]) for m in members)
        return late / early

    assert trend(late_churners) < 0.75
    assert 0.85 < trend(stayers) < 1.15

    def per_member(counter: Counter[str], members: list) -> float:
        return sum(counter[m.member_id] for m in members) / len(members)

    all_churners = [m for m in operator.members if m.churn_at is not None]
    drop_share = sum(dropped[m.member_id] for m in all_churners) / sum(
        answered[m.member_id] for m in all_churners
    )
    stayer_drop_share = sum(dropped[m.member_id] for m in stayers) / sum(
        answered[m.member_id] for m in stayers
    )
    assert drop_share > 2 * stayer_drop_share
    assert per_member(topups, all_churners) < 0.6 * per_member(topups, stayers)
    # the last days before churn are (almost) silent
    quiet = 0
    for member in late_churners:
        assert member.churn_at is not None
        last_day = (member.churn_at - operator.start).days
        quiet += sum(usage[member.member_id][last_day - 2 : last_day])
    assert quiet / len(late_churners) < 1.0
