"""A generated run lands within the published ranges the simulator README cites, prepaid balances hold,
plan fees are charged monthly, and churn shows weeks ahead with false alarms beside it.

The run is the demo's shape (fixed seed, ground-truth CSV files from a real backfill into a sink that
discards); tolerances are the cited ranges, wide enough for sampling noise at this size.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from cdr_platform.simulator.ground_truth import GroundTruthWriter
from cdr_platform.simulator.model import PLANS, OperatorConfig, build_operator
from cdr_platform.simulator.producers import DiscardingSink
from cdr_platform.simulator.simulation import Simulation
from cdr_platform.simulator.traffic import CallRecord, DataSessionRecord, SmsRecord, day_count, member_day
from tests.simulator.conftest import START

pytestmark = [pytest.mark.unit, pytest.mark.slow]

DAYS = 42
MEMBERS = 300


@pytest.fixture(scope="module")
def truth(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("calibration")
    operator = build_operator(OperatorConfig(seed=42, members=MEMBERS), START, DAYS)
    with GroundTruthWriter(folder) as writer:
        Simulation(operator, DiscardingSink(), ground_truth=writer).run_backfill()
    names = ("calls", "sms", "data_sessions", "topups", "refusals", "plan_fees", "members")
    return {name: pd.read_csv(Path(folder) / f"{name}.csv") for name in names}


def _member_months(truth: dict[str, pd.DataFrame]) -> float:
    return MEMBERS * DAYS / 30


def test_network_kpis_fall_within_the_cited_ranges(truth: dict[str, pd.DataFrame]) -> None:
    calls = truth["calls"]
    outcome = calls.outcome.value_counts()
    answered = outcome["completed"] + outcome["dropped"]
    assert 0.55 <= answered / len(calls) <= 0.70  # ASR
    ner_ok = answered + outcome[["busy", "no_answer", "rejected", "absent"]].sum()
    assert ner_ok / len(calls) >= 0.97  # NER (E.411: user-caused outcomes are network successes)
    assert 0.005 <= outcome["dropped"] / answered <= 0.02  # dropped-call rate
    assert 0.002 <= outcome["congestion"] / len(calls) <= 0.02  # blocking (Q.850 34)
    acd = calls.loc[calls.answered_at.notna(), "duration_s"].mean()
    assert 100 <= acd <= 180  # ACD, seconds
    assert set(calls.cause_code.dropna().astype(int)) == {17, 19, 20, 21, 34}


def test_usage_per_member_falls_within_the_cited_ranges(truth: dict[str, pd.DataFrame]) -> None:
    months = _member_months(truth)
    calls = truth["calls"]
    assert 80 <= len(calls) / months <= 250  # call legs a month
    mo_minutes = calls.loc[calls.record_type == "mo_call_record", "duration_s"].sum() / 60 / months
    assert 70 <= mo_minutes <= 200
    assert 20 <= len(truth["sms"]) / months <= 100
    data = truth["data_sessions"]
    gigabytes = (data.uplink_bytes + data.downlink_bytes).sum() / 1e9 / months
    assert 2 <= gigabytes <= 12


def test_arpu_and_its_split_fall_within_the_cited_ranges(truth: dict[str, pd.DataFrame]) -> None:
    months = _member_months(truth)
    revenue = {
        "voice": truth["calls"].charge_micros.sum(),
        "sms": truth["sms"].charge_micros.sum(),
        "data": truth["data_sessions"].charge_micros.sum(),
        "plan_fee": truth["plan_fees"].amount_micros.sum(),
    }
    arpu = sum(revenue.values()) / 1e6 / months
    assert 12 <= arpu <= 25
    shares = {kind: value / sum(revenue.values()) for kind, value in revenue.items()}
    assert 0.3 <= shares["plan_fee"] <= 0.65 and shares["data"] > shares["sms"]
    assert all(share > 0.02 for share in shares.values())
    members = truth["members"].set_index("member_id")
    spend = pd.concat(
        [truth[name][["member_id", "charge_micros"]] for name in ("calls", "sms", "data_sessions")]
        + [
            truth["plan_fees"][["member_id", "amount_micros"]].rename(
                columns={"amount_micros": "charge_micros"}
            )
        ]
    )
    by_type = spend.join(members.plan_type, on="member_id").groupby("plan_type").charge_micros.sum()
    per_member = by_type / members.plan_type.value_counts() / 1e6 / (DAYS / 30)
    assert per_member["prepaid"] < per_member["postpaid"]


def _events_in_start_order(truth: dict[str, pd.DataFrame]) -> pd.DataFrame:
    frames = [
        truth["calls"].rename(columns={"attempted_at": "at"})[["member_id", "at", "charge_micros"]],
        truth["sms"].rename(columns={"submitted_at": "at"})[["member_id", "at", "charge_micros"]],
        truth["data_sessions"].rename(columns={"started_at": "at"})[["member_id", "at", "charge_micros"]],
    ]
    usage = pd.concat(frames).assign(delta=lambda f: -f.charge_micros)
    topups = truth["topups"][["member_id", "at"]].assign(delta=truth["topups"].amount_micros)
    moves = pd.concat([usage[["member_id", "at", "delta"]], topups])
    moves["at"] = pd.to_datetime(moves["at"], utc=True, format="ISO8601")
    return moves


def test_prepaid_balances_never_go_negative_and_refusals_are_recorded(truth: dict[str, pd.DataFrame]) -> None:
    members = truth["members"]
    always_prepaid = members[(members.plan_type == "prepaid") & members.new_plan_id.isna()]
    moves = _events_in_start_order(truth)
    moves = moves[moves.member_id.isin(always_prepaid.member_id)]
    opening = always_prepaid.set_index("member_id").opening_balance_micros
    lowest = []
    for member_id, rows in moves.sort_values(
        ["member_id", "at", "delta"], ascending=[True, True, False]
    ).groupby("member_id"):
        balance = opening[member_id] + rows.delta.cumsum()
        lowest.append(balance.min())
    assert lowest and min(lowest) >= 0
    refusals = truth["refusals"]
    assert len(refusals) > 0 and set(refusals.usage_kind) == {"voice", "sms", "data"}
    assert (refusals.balance_micros < refusals.required_micros).all()
    prepaid_ids = {p.plan_id for p in PLANS if p.plan_type == "prepaid"}
    ever_prepaid = members[members.plan_id.isin(prepaid_ids) | members.new_plan_id.isin(prepaid_ids)]
    assert refusals.member_id.isin(ever_prepaid.member_id).all()
    # members run dry and top up again: some refused members top up later
    later = truth["topups"].merge(refusals, on="member_id", suffixes=("_topup", "_refusal"))
    assert (later.at_topup > later.at_refusal).any()


def test_plan_fees_are_charged_once_a_month_on_the_billing_day(truth: dict[str, pd.DataFrame]) -> None:
    fees = truth["plan_fees"].assign(at=lambda f: pd.to_datetime(f["at"], utc=True, format="ISO8601"))
    members = truth["members"].set_index("member_id")
    price = {plan.plan_id: plan.monthly_fee_micros for plan in PLANS}
    assert (fees.amount_micros == fees.plan_id.map(price)).all()
    assert (fees["at"].dt.day == fees.member_id.map(members.billing_day)).all()
    steady = members[(members.plan_type == "postpaid") & members.new_plan_id.isna() & (members.churned == 0)]
    activated = pd.to_datetime(steady.activated_at, utc=True, format="ISO8601")
    steady = steady[activated < pd.Timestamp(START)]
    counts = fees.groupby("member_id").size().reindex(steady.index, fill_value=0)
    assert counts.between(1, 2).all()  # 42 days hold one or two billing days
    for member_id, rows in fees[fees.member_id.isin(steady.index)].groupby("member_id"):
        if len(rows) == 2:
            first, second = sorted(rows["at"])
            assert 28 <= (second - first).days <= 31, member_id
    prepaid = members[(members.plan_type == "prepaid") & members.new_plan_id.isna()].index
    assert not fees.member_id.isin(prepaid).any()
    assert list(fees.period_end.map(date.fromisoformat)) == [
        date.fromisoformat(start).replace(month=date.fromisoformat(start).month % 12 + 1)
        if date.fromisoformat(start).month < 12
        else date.fromisoformat(start).replace(year=date.fromisoformat(start).year + 1, month=1)
        for start in fees.period_start
    ]


def _weekly_usage(
    members: int, days: int, seed: int, churn_share: float
) -> tuple[list, dict[str, list[int]]]:
    operator = build_operator(
        OperatorConfig(seed=seed, members=members, churn_share=churn_share), START, days
    )
    usage: dict[str, list[int]] = defaultdict(lambda: [0] * ((days + 6) // 7))
    for day in range(day_count(operator)):
        for member in operator.members:
            count = sum(
                isinstance(r, CallRecord | SmsRecord | DataSessionRecord)
                for r in member_day(operator, member, day)
            )
            usage[member.member_id][day // 7] += count
    return list(operator.members), usage


def test_churners_wind_down_over_weeks_and_some_stayers_dip() -> None:
    members, usage = _weekly_usage(members=600, days=42, seed=11, churn_share=0.2)
    end = START + timedelta(days=42)
    late = [
        m
        for m in members
        if m.churn_at is not None
        and m.churn_at >= START + timedelta(days=35)
        and m.churn_lead_s >= 14 * 86400
    ]
    assert len(late) >= 10
    early_weeks = sum(sum(usage[m.member_id][0:2]) for m in late)
    last_full_week = sum(usage[m.member_id][4] for m in late)
    assert last_full_week < 0.6 * early_weeks / 2  # the week before leaving is well below the first weeks
    weekly_trend = [sum(usage[m.member_id][w] for m in late) for w in range(5)]
    assert weekly_trend[4] < weekly_trend[2] < weekly_trend[0]  # a decline over weeks, not a cliff
    sudden = [m for m in members if m.churn_at is not None and m.churn_lead_s == 0]
    assert sudden  # some leave without warning
    stayers = [m for m in members if m.leaves_at is None or m.leaves_at >= end + timedelta(days=35)]

    def dipped(member_id: str) -> bool:
        weeks = usage[member_id][:6]
        typical = sorted(weeks)[3]
        return typical > 20 and min(weeks) < 0.5 * typical

    false_alarms = [m for m in stayers if dipped(m.member_id)]
    assert len(false_alarms) >= len(late)  # more stayers dip than churners wind down: not trivial
    assert len(false_alarms) < 0.25 * len(stayers)
