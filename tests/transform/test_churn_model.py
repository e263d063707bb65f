"""The churn model, point in time: every feature, score and backtest figure recomputed with pandas from
the generated events before each cut-off, and the proof that no feature reads the cut-off day or later.

The session's lake (conftest.py) is built with CHURN_WINDOWS (dataset.py), windows short enough for
its 15 days: early cut-offs have incomplete windows (NULL), later ones complete, and the two churners
fall inside label windows.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import pandas as pd
import pytest

from tests.transform import reference
from tests.transform.conftest import BuiltLake
from tests.transform.dataset import CHURN_WINDOWS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FEATURES = [
    "plan_type",
    "tenure_days",
    "observed_days",
    "days_since_last_activity",
    "days_since_last_topup",
    "usage_trend_complete",
    "spend_trend_complete",
    "usage_trend_ratio",
    "spend_trend_ratio",
    "dropped_call_rate",
    "inactivity_component",
    "topup_lapse_component",
    "usage_decline_component",
    "dropped_call_component",
    "spend_decline_component",
    "new_member_component",
    "score_components_available",
    "churn_risk_score",
]


@pytest.fixture(scope="module")
def frame(built_lake: BuiltLake) -> pd.DataFrame:
    return reference.events_frame(built_lake.events)


@pytest.fixture(scope="module")
def point_in_time(built_lake: BuiltLake) -> pd.DataFrame:
    features = built_lake.query(
        "SELECT * FROM intermediate.int_churn_features_point_in_time ORDER BY as_of_date, member_id"
    )
    return features.assign(as_of_date=pd.to_datetime(features.as_of_date).dt.date)


def _same(left: object, right: object) -> bool:
    missing = [
        value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA
        for value in (left, right)
    ]
    if any(missing):
        return all(missing)
    if isinstance(left, float) or isinstance(right, float):
        return math.isclose(float(left), float(right), rel_tol=1e-9, abs_tol=1e-12)
    return left == right


def _mismatches(mart: pd.DataFrame, expected: pd.DataFrame, columns: list[str]) -> list[str]:
    return [
        f"{member} {column}: mart {mart.loc[member, column]!r}, pandas {expected.loc[member, column]!r}"
        for member in expected.index
        for column in columns
        if not _same(mart.loc[member, column], expected.loc[member, column])
    ]


def _as_of(frame: pd.DataFrame) -> pd.Timestamp:
    """The data's "now": the latest event a member day or a call counts (the `as_of_timestamp` macro)."""
    counted = frame.event_type.isin(reference.MEMBER_DAY_TYPES) | frame.event_type.str.startswith("call_")
    return frame[counted].occurred_at.max()


def test_cutoffs_are_rolling_and_their_label_windows_have_passed(
    frame: pd.DataFrame, point_in_time: pd.DataFrame
) -> None:
    as_of = _as_of(frame)
    first_day = frame[frame.event_type.isin(reference.MEMBER_DAY_TYPES)].occurred_at.min().date()
    last = (as_of - timedelta(days=CHURN_WINDOWS["horizon_days"])).date()
    expected, cutoff = [], last
    while cutoff >= first_day + timedelta(days=CHURN_WINDOWS["backtest_min_history_days"]):
        expected.append(cutoff)
        cutoff -= timedelta(days=CHURN_WINDOWS["backtest_step_days"])
    backtest = point_in_time[point_in_time.is_backtest_cutoff]
    assert sorted(set(backtest.as_of_date)) == sorted(expected)
    assert set(point_in_time[~point_in_time.is_backtest_cutoff].as_of_date) == {as_of.date()}


def test_point_in_time_features_match_a_recomputation_from_events_before_the_cutoff(
    frame: pd.DataFrame, point_in_time: pd.DataFrame
) -> None:
    for cutoff, mart in point_in_time.groupby("as_of_date"):
        expected = reference.churn_features(frame, cutoff, CHURN_WINDOWS)
        mart = mart.set_index("member_id").sort_index()
        assert list(mart.index) == list(expected.index), cutoff  # the members at risk on the cut-off
        assert _mismatches(mart, expected, [*FEATURES, "churned_within_horizon"]) == [], cutoff
    # both sides of every window's completeness are exercised, and both labels
    assert point_in_time.usage_trend_complete.any() and not point_in_time.usage_trend_complete.all()
    assert point_in_time.spend_trend_complete.any() and not point_in_time.spend_trend_complete.all()
    assert point_in_time[point_in_time.is_backtest_cutoff].churned_within_horizon.sum() >= 2


def test_incomplete_windows_are_null_never_a_constant(point_in_time: pd.DataFrame) -> None:
    incomplete = point_in_time[~point_in_time.usage_trend_complete]
    assert incomplete.usage_trend_ratio.isna().all() and incomplete.usage_decline_component.isna().all()
    assert incomplete.usage_events_recent.isna().all() and incomplete.usage_events_baseline.isna().all()
    assert (incomplete.score_components_available < 6).all()
    no_spend_window = point_in_time[~point_in_time.spend_trend_complete]
    assert no_spend_window.spend_trend_ratio.isna().all() and no_spend_window.spend_micros_prior.isna().all()


def test_no_feature_reads_an_event_at_or_after_its_cutoff(
    frame: pd.DataFrame, point_in_time: pd.DataFrame
) -> None:
    """Events at or after the cut-off do not change the mart's features, and would if they were read.

    The mart equals the recomputation from the events strictly before each cut-off (previous test);
    here, the events at and after it are thrown away outright before recomputing, with the same result,
    while the same recomputation one day later (reading the cut-off day) differs for every cut-off.
    """
    for cutoff, mart in point_in_time.groupby("as_of_date"):
        at = pd.Timestamp(cutoff, tz="UTC")
        lifecycle = frame.event_type.isin(["member_activated", "port_out_requested", "member_deactivated"])
        truncated = frame[(frame.occurred_at < at) | lifecycle]  # the labels need the churn times
        mart = mart.set_index("member_id").sort_index()
        assert _mismatches(mart, reference.churn_features(truncated, cutoff, CHURN_WINDOWS), FEATURES) == []
        leaky = reference.churn_features(frame, cutoff + timedelta(days=1), CHURN_WINDOWS)
        shared = mart.index.intersection(leaky.index)
        assert _mismatches(mart.loc[shared], leaky.loc[shared], ["churn_risk_score", "dropped_call_rate"]), (
            cutoff
        )


def test_backtest_figures_match_a_recomputation(built_lake: BuiltLake, frame: pd.DataFrame) -> None:
    backtest = built_lake.full_refresh["rpt_churn_model_backtest"]
    assert len(backtest) > 0
    for row in backtest.itertuples():
        cutoff: date = pd.Timestamp(row.cutoff_date).date()
        features = reference.churn_features(frame, cutoff, CHURN_WINDOWS)
        expected = reference.backtest_metrics(
            features.churn_risk_score, features.churned_within_horizon, CHURN_WINDOWS["precision_k"]
        )
        assert row.horizon_days == CHURN_WINDOWS["horizon_days"]
        assert pd.Timestamp(row.label_window_end).date() == cutoff + timedelta(days=row.horizon_days)
        for name, value in expected.items():
            assert _same(getattr(row, name), value), (cutoff, name, getattr(row, name), value)
    assert (backtest.churners > 0).any() and backtest.auc.notna().any()


def test_rpt_churn_features_is_today_s_application(
    built_lake: BuiltLake, frame: pd.DataFrame, point_in_time: pd.DataFrame
) -> None:
    mart = built_lake.full_refresh["rpt_churn_features"].set_index("member_id").sort_index()
    today = _as_of(frame).date()
    assert set(pd.to_datetime(mart.as_of_date).dt.date) == {today}
    expected = reference.churn_features(frame, today, CHURN_WINDOWS)
    assert list(mart.index) == list(expected.index)
    assert _mismatches(mart, expected, FEATURES) == []
    # the port-out request (M000002) and the deactivation (M000003) are before today: not at risk
    assert "M000002" not in mart.index and "M000003" not in mart.index
    bands = pd.cut(mart.churn_risk_score, [-1, 0.3, 0.6, 2], right=False, labels=["low", "medium", "high"])
    assert (mart.churn_risk_band == bands.astype(str)).all()
