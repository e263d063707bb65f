"""The KPIs recomputed from the generated events with pandas, independently of the dbt SQL."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from cdr_platform.events import Event

BUSY, NO_ANSWER, REJECTED, CONGESTION = {17}, {18, 19}, {21}, {34, 42, 44}
ACTIVITY_TYPES = {"call_attempted", "sms_submitted", "data_session_ended", "topup_completed"}


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
    """ASR, NER, ACD, dropped-call rate and blocking rate per (cell, hour)."""
    c = call_rows.assign(
        busy=call_rows.cause.isin(BUSY),
        no_answer=call_rows.cause.isin(NO_ANSWER),
        rejected=call_rows.cause.isin(REJECTED),
        congestion=call_rows.cause.isin(CONGESTION),
        released=call_rows.duration.notna(),
    )
    at_attempt = c.groupby(["attempt_cell", "hour"]).agg(
        seizures=("call_id", "size"),
        answered=("answered", "sum"),
        busy=("busy", "sum"),
        no_answer=("no_answer", "sum"),
        rejected=("rejected", "sum"),
        congestion=("congestion", "sum"),
        released=("released", "sum"),
        duration=("duration", "sum"),
    )
    at_attempt.index.names = ["cell_id", "hour_start"]
    dropped = c.groupby(["last_cell", "hour"]).dropped.sum()
    dropped.index.names = ["cell_id", "hour_start"]
    kpis = at_attempt.join(dropped, how="outer").fillna(0)

    def ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
        return (numerator / denominator.where(denominator != 0)).astype(float)

    kpis["asr"] = ratio(kpis.answered, kpis.seizures)
    kpis["ner"] = ratio(kpis.answered + kpis.busy + kpis.no_answer + kpis.rejected, kpis.seizures)
    kpis["acd"] = ratio(kpis.duration, kpis.released)
    kpis["dcr"] = ratio(kpis.dropped, kpis.answered)
    kpis["blocking"] = ratio(kpis.congestion, kpis.seizures)
    return kpis.reset_index()


def member_days(frame: pd.DataFrame) -> pd.DataFrame:
    """Minutes, SMS, bytes, spend and activity per (member, UTC day)."""
    f = frame.assign(day=frame.occurred_at.dt.tz_convert("UTC").dt.date)
    release = f[f.event_type.isin(["call_ended", "call_dropped"])]
    rated = f[f.event_type == "usage_rated"]
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
