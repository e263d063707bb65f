"""The KPIs and the churn features recomputed from the generated events with pandas, independently of
the dbt SQL: the definitions in dbt_project/models/_docs.md, written again from the events."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from cdr_platform.events import Event

BUSY, NO_ANSWER, ABSENT, REJECTED, CONGESTION = {17}, {18, 19}, {20}, {21}, {34, 42, 44}
ACTIVITY_TYPES = {"call_attempted", "sms_submitted", "data_session_ended", "topup_completed"}
USAGE_TYPES = {"call_attempted", "sms_submitted", "data_session_ended"}  # the churn model's usage events
CHARGE_TYPES = {"usage_rated", "plan_fee_charged"}  # revenue: usage charges and plan fees
MEMBER_DAY_TYPES = ACTIVITY_TYPES | CHARGE_TYPES | {"call_ended", "call_dropped"}  # what a member day counts


def events_frame(events: list[Event]) -> pd.DataFrame:
    rows = [
        {
            "event_id": str(e.event_id),
            "event_type": e.event_type,
            "occurred_at": pd.Timestamp(e.occurred_at),
            "member_id": e.member_id,
            "correlation_id": e.correlation_id,
            **{f"p_{k}": v for k, v in e.payload.model_dump().items()},
        }
        for e in events
    ]
    return pd.DataFrame(rows)


def calls(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (call id, member): outcome flags, cells, duration, hour of seizure."""
    call_events = frame[frame.event_type.str.startswith("call_")]
    out = []
    for (call_id, member_id), group in call_events.groupby(["correlation_id", "member_id"]):
        types = set(group.event_type)
        attempt = group[group.event_type == "call_attempted"]
        release = group[group.event_type.isin(["call_ended", "call_dropped"])]
        failed = group[group.event_type == "call_failed"]
        answered = bool(types & {"call_answered", "call_ended", "call_dropped"})
        cause = None if answered or failed.empty else failed.iloc[0]["p_cause"]["code"]
        attempted_at = attempt.occurred_at.min()
        out.append(
            {
                "call_id": call_id,
                "member_id": member_id,
                "attempted_at": attempted_at,
                "hour": attempted_at.floor("h"),
                "attempt_cell": attempt.iloc[0]["p_cell_id"],
                "last_cell": group.sort_values("occurred_at").iloc[-1]["p_cell_id"],
                "answered": answered,
                "answered_at": group[group.event_type == "call_answered"].occurred_at.min(),
                "released_at": release.occurred_at.min(),
                "dropped": "call_dropped" in types,
                "failed": bool(not answered and not failed.empty),
                "cause": cause,
                "duration": release.iloc[0]["p_call_duration_s"] if not release.empty else None,
            }
        )
    return pd.DataFrame(out)


def cell_kpis(call_rows: pd.DataFrame) -> pd.DataFrame:
    """ASR, NER (ITU-T E.411), ACD, dropped-call rate and blocking rate per (attempt cell, hour)."""
    c = call_rows.assign(
        busy=call_rows.cause.isin(BUSY),
        no_answer=call_rows.cause.isin(NO_ANSWER),
        absent=call_rows.cause.isin(ABSENT),
        rejected=call_rows.cause.isin(REJECTED),
        congestion=call_rows.cause.isin(CONGESTION),
        released=call_rows.duration.notna(),
    )
    at_attempt = c.groupby(["attempt_cell", "hour"]).agg(
        seizures=("call_id", "size"),
        answered=("answered", "sum"),
        busy=("busy", "sum"),
        no_answer=("no_answer", "sum"),
        absent=("absent", "sum"),
        rejected=("rejected", "sum"),
        congestion=("congestion", "sum"),
        released=("released", "sum"),
        duration=("duration", "sum"),
        dropped=("dropped", "sum"),  # at the attempt cell, like the answered calls it is a share of
    )
    at_attempt.index.names = ["cell_id", "hour_start"]
    kpis = at_attempt

    def ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
        return (numerator / denominator.where(denominator != 0)).astype(float)

    kpis["asr"] = ratio(kpis.answered, kpis.seizures)
    kpis["ner"] = ratio(
        kpis.answered + kpis.busy + kpis.no_answer + kpis.absent + kpis.rejected, kpis.seizures
    )
    kpis["acd"] = ratio(kpis.duration, kpis.released)
    kpis["dcr"] = ratio(kpis.dropped, kpis.answered)
    kpis["blocking"] = ratio(kpis.congestion, kpis.seizures)
    return kpis.reset_index()


def member_days(frame: pd.DataFrame) -> pd.DataFrame:
    """Minutes, SMS, bytes, spend and activity per (member, UTC day)."""
    f = frame.assign(day=frame.occurred_at.dt.tz_convert("UTC").dt.date)
    release = f[f.event_type.isin(["call_ended", "call_dropped"])]
    rated = f[f.event_type.isin(CHARGE_TYPES)]
    data = f[f.event_type == "data_session_ended"]
    keys = ["member_id", "day"]
    parts = [
        f[f.event_type.isin(ACTIVITY_TYPES)].groupby(keys).size().rename("activities"),
        release.groupby(keys).p_call_duration_s.sum().rename("voice_seconds"),
        f[f.event_type == "sms_submitted"].groupby(keys).size().rename("sms_sent"),
        (data.p_data_volume_uplink + data.p_data_volume_downlink)
        .groupby([data.member_id, data.day])
        .sum()
        .rename("data_bytes"),
        rated.groupby(keys).p_charge_micros.sum().rename("spend_micros"),
    ]
    return (
        pd.concat(parts, axis=1)
        .fillna(0)
        .reset_index()
        .rename(columns={"level_0": "member_id", "level_1": "day"})
    )


def intraday(
    frame: pd.DataFrame, call_rows: pd.DataFrame, as_of: pd.Timestamp
) -> dict[str, tuple[float, float]]:
    """(today, same time last week) for each executive KPI."""
    today_start = as_of.floor("D")
    windows = {
        "today": (today_start, as_of),
        "week": (today_start - timedelta(days=7), as_of - timedelta(days=7)),
    }
    out: dict[str, dict[str, float]] = {
        "active_members": {},
        "calls": {},
        "dropped_call_rate": {},
        "revenue": {},
    }
    for name, (low, high) in windows.items():
        in_window = frame[(frame.occurred_at >= low) & (frame.occurred_at <= high)]
        out["active_members"][name] = in_window[in_window.event_type.isin(ACTIVITY_TYPES)].member_id.nunique()
        out["calls"][name] = int(call_rows.attempted_at.between(low, high).sum())
        answered = int((call_rows.answered & call_rows.answered_at.between(low, high)).sum())
        dropped = int((call_rows.dropped & call_rows.released_at.between(low, high)).sum())
        out["dropped_call_rate"][name] = dropped / answered if answered else float("nan")
        out["revenue"][name] = in_window[in_window.event_type == "usage_rated"].p_charge_micros.sum() / 1e6
    return {kpi: (values["today"], values["week"]) for kpi, values in out.items()}


def _utc_day(stamps: pd.Series) -> pd.Series:
    return stamps.dt.tz_convert("UTC").dt.date


def lifecycles(frame: pd.DataFrame) -> pd.DataFrame:
    """Per member: activation, deactivation and churn (first port-out request or deactivation) times."""
    life = frame[frame.event_type.isin(["member_activated", "port_out_requested", "member_deactivated"])]
    times = life.pivot_table(index="member_id", columns="event_type", values="occurred_at", aggfunc="min")
    times = times.reindex(columns=["member_activated", "port_out_requested", "member_deactivated"])
    return pd.DataFrame(
        {
            "activated_at": times.member_activated,
            "deactivated_at": times.member_deactivated,
            "churned_at": times[["port_out_requested", "member_deactivated"]].min(axis=1),
        }
    )


def revenue_days(frame: pd.DataFrame) -> pd.DataFrame:
    """Per UTC day: revenue, active members, subscribers at its start and end, ARPU, revenue per active."""
    days = member_days(frame)
    out = days.groupby("day").agg(
        revenue=("spend_micros", "sum"), active=("activities", lambda s: (s > 0).sum())
    )
    life = lifecycles(frame)

    def subscribers(at: pd.Timestamp) -> int:
        gone = life.deactivated_at.notna() & (life.deactivated_at < at)
        return int(((life.activated_at < at) & ~gone).sum())

    out["opening"] = [subscribers(pd.Timestamp(day, tz="UTC")) for day in out.index]
    out["closing"] = [subscribers(pd.Timestamp(day, tz="UTC") + timedelta(days=1)) for day in out.index]
    out["arpu"] = out.revenue / ((out.opening + out.closing) / 2)
    out["revenue_per_active"] = out.revenue / out.active
    return out


def churn_features(frame: pd.DataFrame, cutoff: date, windows: dict[str, int]) -> pd.DataFrame:
    """The churn model's features and score as of ``cutoff`` for the members at risk on it.

    Reads events before the cut-off's midnight (UTC) only: ``frame`` may hold the whole history.
    """
    at = pd.Timestamp(cutoff, tz="UTC")
    life = lifecycles(frame)
    at_risk = life[(life.activated_at < at) & (life.churned_at.isna() | (life.churned_at >= at))]
    usage_events = frame[frame.event_type.isin(MEMBER_DAY_TYPES)]
    first_day = _utc_day(usage_events.occurred_at).min()
    before = frame[frame.occurred_at < at].assign(day=lambda f: _utc_day(f.occurred_at))
    recent, baseline, spend = windows["recent_days"], windows["baseline_days"], windows["spend_days"]
    rows = []
    for member_id, member in at_risk.iterrows():
        events = before[before.member_id == member_id]
        history_start = max(first_day, member.activated_at.date() + timedelta(days=1))
        observed = max((cutoff - history_start).days, 0)

        def count(types: set[str], low: int, high: int = 0, ev: pd.DataFrame = events) -> int:
            in_window = (ev.day >= cutoff - timedelta(days=low)) & (ev.day < cutoff - timedelta(days=high))
            return int((ev.event_type.isin(types) & in_window).sum())

        def spent(low: int, high: int = 0, ev: pd.DataFrame = events) -> int:
            rated = ev[ev.event_type == "usage_rated"]
            in_window = (rated.day >= cutoff - timedelta(days=low)) & (
                rated.day < cutoff - timedelta(days=high)
            )
            return int(rated[in_window].p_charge_micros.sum())

        plans = events[events.event_type.isin(["member_activated", "plan_changed"])].sort_values(
            "occurred_at"
        )
        plan = (
            plans.p_plan_type.fillna(plans.get("p_new_plan_type")) if not plans.empty else pd.Series([None])
        )
        active_days = events[events.event_type.isin(ACTIVITY_TYPES)].day
        topup_days = events[events.event_type == "topup_completed"].day
        usage_complete = (cutoff - timedelta(days=recent + baseline)) >= history_start
        spend_complete = (cutoff - timedelta(days=2 * spend)) >= history_start
        usage_recent, usage_base = count(USAGE_TYPES, recent), count(USAGE_TYPES, recent + baseline, recent)
        spend_recent, spend_prior = spent(spend), spent(2 * spend, spend)
        dropped = count({"call_dropped"}, windows["drop_window_days"])
        released = count({"call_ended", "call_dropped"}, windows["drop_window_days"])
        row = {
            "member_id": member_id,
            "plan_type": plan.iloc[-1],
            "tenure_days": (cutoff - member.activated_at.date()).days,
            "observed_days": observed,
            "days_since_last_activity": (cutoff - active_days.max()).days if len(active_days) else None,
            "days_since_last_topup": (cutoff - topup_days.max()).days if len(topup_days) else None,
            "usage_trend_complete": usage_complete,
            "spend_trend_complete": spend_complete,
            "usage_trend_ratio": _ratio(usage_recent / recent, usage_base / baseline)
            if usage_complete
            else None,
            "spend_trend_ratio": _ratio(spend_recent, spend_prior) if spend_complete else None,
            "dropped_call_rate": _ratio(dropped, released)
            if released >= windows["min_answered_calls"]
            else None,
            "churned_within_horizon": bool(
                pd.notna(member.churned_at)
                and member.churned_at < at + timedelta(days=windows["horizon_days"])
            ),
        }
        rows.append({**row, **_score(row)})
    return pd.DataFrame(rows).set_index("member_id").sort_index()


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


WEIGHTS = {
    "inactivity": 0.30,
    "topup_lapse": 0.15,
    "usage_decline": 0.25,
    "dropped_call": 0.15,
    "spend_decline": 0.10,
    "new_member": 0.05,
}


def _lapse(days: int | None, observed: int, full: float) -> float | None:
    if days is not None:
        return min(days / full, 1.0)
    return 1.0 if observed >= full else None


def _score(row: dict) -> dict:
    """The components (None: not enough data) and their weighted mean over those available."""
    components = {
        "inactivity": _lapse(row["days_since_last_activity"], row["observed_days"], 14),
        "topup_lapse": _lapse(row["days_since_last_topup"], row["observed_days"], 30)
        if row["plan_type"] == "prepaid"
        else 0.0,
        "usage_decline": None if row["usage_trend_ratio"] is None else 1 - min(row["usage_trend_ratio"], 1),
        "dropped_call": None if row["dropped_call_rate"] is None else min(row["dropped_call_rate"] / 0.05, 1),
        "spend_decline": None if row["spend_trend_ratio"] is None else 1 - min(row["spend_trend_ratio"], 1),
        "new_member": 1.0 if row["tenure_days"] < 90 else 0.0,
    }
    available = {name: value for name, value in components.items() if value is not None}
    score = sum(WEIGHTS[n] * v for n, v in available.items()) / sum(WEIGHTS[n] for n in available)
    return {
        **{f"{name}_component": value for name, value in components.items()},
        "score_components_available": len(available),
        "churn_risk_score": round(score, 4),
    }


def backtest_metrics(scores: pd.Series, labels: pd.Series, k: int) -> dict[str, float | None]:
    """Base rate, AUC (average ranks: ties count half) and precision at k (ties broken by member id)."""
    positives, members = int(labels.sum()), len(labels)
    ranks = scores.rank(method="average")
    negatives = members - positives
    auc = (
        (ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives)
        if positives and negatives
        else None
    )
    order = pd.DataFrame({"score": scores, "label": labels}).sort_values(
        ["score"], ascending=False, kind="stable"
    )
    order = order.assign(member=order.index).sort_values(["score", "member"], ascending=[False, True])
    k = min(k, members)
    top = int(order.label.iloc[:k].sum())
    return {
        "members": members,
        "churners": positives,
        "base_rate": positives / members,
        "auc": auc,
        "k": k,
        "churners_in_top_k": top,
        "precision_at_k": top / k if k else np.nan,
    }
