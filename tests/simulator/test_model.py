from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest

from cdr_platform.simulator.model import OperatorConfig, build_operator, luhn_check_digit
from tests.simulator.conftest import START

pytestmark = pytest.mark.unit


def test_same_seed_builds_the_same_operator_and_another_seed_does_not() -> None:
    config = OperatorConfig(seed=7, members=300, cells=40, location_areas=5)
    assert build_operator(config, START, 3) == build_operator(config, START, 3)
    other = build_operator(replace(config, seed=8), START, 3)
    assert {m.member_id for m in other.members}.isdisjoint(
        m.member_id for m in build_operator(config, START, 3).members
    )


def test_churn_share_and_lifecycle_dates_follow_the_configuration() -> None:
    config = OperatorConfig(
        seed=1, members=2000, churn_share=0.1, new_member_share=0.05, plan_change_share=0.04
    )
    operator = build_operator(config, START, 10)
    churners = [m for m in operator.members if m.churn_at is not None]
    assert len(churners) == 200
    assert all(operator.start <= m.churn_at < operator.end for m in churners)  # type: ignore[operator]
    port_outs = [m for m in churners if m.churn_kind == "port_out"]
    assert 0.5 < len(port_outs) / len(churners) < 0.7
    assert all(m.port_out_requested_at < m.churn_at for m in port_outs)  # type: ignore[operator]
    changers = [m for m in operator.members if m.plan_change_at is not None]
    assert changers and all(m.new_plan != m.plan and m.plan_change_at < operator.end for m in changers)  # type: ignore[operator]
    newcomers = [m for m in operator.members if m.activated_at >= operator.start]
    assert len(newcomers) == pytest.approx(100, abs=15)


def test_cells_have_the_configured_quality_mix() -> None:
    operator = build_operator(OperatorConfig(cells=100, location_areas=10), START, 1)
    qualities = [c.quality for c in operator.cells]
    assert qualities.count("congested") == 10 and qualities.count("drop_prone") == 10
    assert len({c.location_area_code for c in operator.cells}) == 10
    drop_prone = [c.drop_rate for c in operator.cells if c.quality == "drop_prone"]
    normal = [c.drop_rate for c in operator.cells if c.quality == "normal"]
    assert min(drop_prone) > max(normal)


def test_identifiers_are_well_formed() -> None:
    operator = build_operator(OperatorConfig(members=50), START, 1)
    for m in operator.members:
        assert len(m.imei) == 15 and luhn_check_digit(m.imei[:-1]) == m.imei[-1]
        assert m.imsi.startswith("00101") and len(m.imsi) == 15
    assert len({m.msisdn for m in operator.members}) == 50


def test_engagement_declines_towards_churn_then_stops() -> None:
    operator = build_operator(OperatorConfig(members=500, churn_share=0.2), START, 30)
    member = next(
        m for m in operator.members if m.churn_at is not None and not m.dips and m.churn_inactive_s > 86400
    )
    assert member.churn_at is not None and member.churn_lead_s >= 14 * 86400
    values = [member.engagement(member.churn_at - timedelta(days=d)) for d in (40, 12, 8, 4, 1, 0.5)]
    assert values == sorted(values, reverse=True)
    assert values[0] == 1.0 and values[-1] <= 0.1


def test_churn_hazards_differ_by_plan_type_and_some_leave_without_warning() -> None:
    config = OperatorConfig(seed=5, members=20_000, prepaid_share=0.5)
    operator = build_operator(config, START, 30)
    by_type = Counter(m.plan.plan_type for m in operator.members)
    churned = Counter(m.plan.plan_type for m in operator.members if m.churn_at is not None)
    prepaid = churned["prepaid"] / by_type["prepaid"]
    postpaid = churned["postpaid"] / by_type["postpaid"]
    assert prepaid == pytest.approx(config.prepaid_monthly_churn, rel=0.2)
    assert postpaid == pytest.approx(config.postpaid_monthly_churn, rel=0.3)
    leavers = [m for m in operator.members if m.leaves_at is not None]
    assert any(m.leaves_at >= operator.end for m in leavers)  # type: ignore[operator]  # wind-down at the end
    sudden = sum(m.churn_lead_s == 0 for m in leavers) / len(leavers)
    assert sudden == pytest.approx(config.sudden_churn_share, abs=0.05)


@pytest.mark.parametrize(
    ("change", "message"),
    [({"answer_ratio": 1.2}, "answer_ratio"), ({"answer_ratio": 0.9, "busy_ratio": 0.2}, "busy_ratio")],
)
def test_invalid_rates_are_refused_with_their_name(change: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OperatorConfig(**change)
