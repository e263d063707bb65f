"""Every KPI recomputed from the known input events with pandas equals the mart's value."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pandas as pd
import pytest

from tests.transform import reference
from tests.transform.conftest import BuiltLake

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def frame(built_lake: BuiltLake) -> pd.DataFrame:
    return reference.events_frame(built_lake.events)


@pytest.fixture(scope="module")
def call_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return reference.calls(frame)


def test_every_call_attempt_is_one_row_with_its_outcome(
    built_lake: BuiltLake, call_rows: pd.DataFrame
) -> None:
    mart = built_lake.full_refresh["fct_calls"]
    assert len(mart) == len(call_rows)
    counts = mart.outcome.value_counts().to_dict()
    assert counts.get("dropped", 0) == call_rows.dropped.sum()
    assert counts.get("failed", 0) == call_rows.failed.sum()
    assert counts.get("completed", 0) + counts.get("dropped", 0) == call_rows.duration.notna().sum()
    assert set(counts) == {"completed", "dropped", "answered", "failed", "attempted"}  # every outcome occurs
    assert set(mart.failure_category.dropna()) == {
        "user_busy",
        "no_answer",
        "subscriber_absent",
        "call_rejected",
        "congestion",
        "other_failure",
    }


def test_cell_kpis_match_an_independent_recomputation(built_lake: BuiltLake, call_rows: pd.DataFrame) -> None:
    expected = reference.cell_kpis(call_rows).set_index(["cell_id", "hour_start"]).sort_index()
    mart = built_lake.full_refresh["fct_cell_kpis_hourly"].set_index(["cell_id", "hour_start"]).sort_index()
    assert list(mart.index) == list(expected.index)
    for column, reference_column in [
        ("seizures", "seizures"),
        ("answered_calls", "answered"),
        ("user_busy_failures", "busy"),
        ("no_answer_failures", "no_answer"),
        ("subscriber_absent_failures", "absent"),
        ("rejected_failures", "rejected"),
        ("congestion_failures", "congestion"),
        ("dropped_calls", "dropped"),
    ]:
        assert (mart[column].to_numpy() == expected[reference_column].to_numpy()).all(), column
    for column, reference_column in [
        ("answer_seizure_ratio", "asr"),
        ("network_effectiveness_ratio", "ner"),
        ("average_call_duration_s", "acd"),
        ("dropped_call_rate", "dcr"),
        ("blocking_rate", "blocking"),
    ]:
        pd.testing.assert_series_equal(
            mart[column].astype(float), expected[reference_column], check_names=False, rtol=1e-9
        )


def test_member_daily_usage_matches(built_lake: BuiltLake, frame: pd.DataFrame) -> None:
    expected = reference.member_days(frame).set_index(["member_id", "day"]).sort_index()
    mart = built_lake.full_refresh["fct_member_daily_usage"]
    mart = (
        mart.assign(day=pd.to_datetime(mart.usage_date).dt.date).set_index(["member_id", "day"]).sort_index()
    )
    assert list(mart.index) == list(expected.index)
    assert (mart.sms_sent.to_numpy() == expected.sms_sent.to_numpy()).all()
    assert (mart.data_bytes.to_numpy() == expected.data_bytes.to_numpy()).all()
    assert (mart.spend_micros.to_numpy() == expected.spend_micros.to_numpy()).all()
    assert (mart.is_active.to_numpy() == (expected.activities > 0).to_numpy()).all()
    pd.testing.assert_series_equal(
        mart.voice_minutes.astype(float), expected.voice_seconds / 60, check_names=False, rtol=1e-9
    )


def test_revenue_arpu_and_revenue_per_active_member_match(built_lake: BuiltLake, frame: pd.DataFrame) -> None:
    expected = reference.revenue_days(frame)
    mart = built_lake.full_refresh["fct_revenue_daily"]
    mart = mart.assign(day=pd.to_datetime(mart.revenue_date).dt.date).set_index("day").sort_index()
    assert list(mart.index) == list(expected.index)
    for column, reference_column in [
        ("revenue_micros", "revenue"),
        ("active_members", "active"),
        ("opening_subscribers", "opening"),
        ("closing_subscribers", "closing"),
    ]:
        assert (mart[column].to_numpy() == expected[reference_column].to_numpy()).all(), column
    for column, reference_column in [
        ("arpu_micros", "arpu"),
        ("revenue_per_active_member_micros", "revenue_per_active"),
    ]:
        pd.testing.assert_series_equal(
            mart[column].astype(float), expected[reference_column], check_names=False, rtol=1e-9
        )
    # the base moves in this history (a deactivation), so ARPU and revenue per active member differ
    assert (expected.opening != expected.closing).any()
    assert not (mart.arpu_micros == mart.revenue_per_active_member_micros).all()


def _trailing(active: pd.DataFrame, day: date, days: int) -> pd.DataFrame:
    return active[(active.day > day - timedelta(days=days)) & (active.day <= day)]


def test_engagement_matches(built_lake: BuiltLake, frame: pd.DataFrame) -> None:
    days = reference.member_days(frame)
    active = days[days.activities > 0]
    first_day = days.day.min()
    mart = built_lake.full_refresh["fct_engagement_daily"]
    for row in mart.itertuples():
        day = pd.Timestamp(row.activity_date).date()
        assert row.daily_active_members == active[active.day == day].member_id.nunique()
        assert row.weekly_active_members == _trailing(active, day, 7).member_id.nunique()
        assert row.monthly_active_members == _trailing(active, day, 30).member_id.nunique()
        assert math.isclose(row.stickiness, row.daily_active_members / row.monthly_active_members)
        assert row.weekly_window_complete == (day - timedelta(days=6) >= first_day)
        assert row.monthly_window_complete == (day - timedelta(days=29) >= first_day)
    assert mart.weekly_window_complete.any() and not mart.weekly_window_complete.all()
    assert not mart.monthly_window_complete.any()  # 15 days of data: no month is complete


def test_exec_intraday_kpis_match_today_and_same_time_last_week(
    built_lake: BuiltLake, frame: pd.DataFrame, call_rows: pd.DataFrame
) -> None:
    # "Now" is the landed watermark: the latest opening event (call attempt, SMS submission, top-up)
    # landed, less the in-flight allowance (60 s); this lake lands as one partition, without shards.
    opening = frame.event_type.isin(["call_attempted", "sms_submitted", "topup_completed"])
    as_of = frame[opening].occurred_at.max() - timedelta(seconds=60)
    mart = built_lake.full_refresh["rpt_exec_kpis_intraday"].set_index("kpi")
    assert pd.Timestamp(mart.as_of.iloc[0]) == as_of
    expected = reference.intraday(frame, call_rows, as_of)
    for kpi, (today, last_week) in expected.items():
        assert math.isclose(mart.loc[kpi, "value_today"], today, rel_tol=1e-9), kpi
        assert math.isclose(mart.loc[kpi, "value_same_time_last_week"], last_week, rel_tol=1e-9), kpi
    assert expected["calls"][1] > 0  # the history really covers the same time last week
