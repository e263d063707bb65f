"""A small, deterministic event history for the dbt tests and the incremental benchmark.

Every outcome a KPI distinguishes occurs (completed, dropped on another cell, busy, no answer,
no user responding, rejected, congestion, other failures, answered-and-still-up, attempt without
outcome yet), on several cells, over several days including the "same time last week" as the
as-of time. Members are activated before their first usage; one changes plan, one requests a
port-out, one is deactivated. The same seed always yields the same events.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from cdr_platform.events import Event, encode_event, event_id_for, make_event
from cdr_platform.lake.landing import LandingBatch, SourceRecord, land_batch

AS_OF = datetime(2025, 3, 15, 14, 30, tzinfo=UTC)
CELLS = [
    ("234-15-0x00a1", 101, "EUTRAN"),
    ("234-15-0x00a2", 101, "NR"),
    ("234-15-0x00b1", 202, "UTRAN"),
    ("234-15-0x00c1", 303, "GERAN"),
]
PLANS = [("PAYG-10", "prepaid"), ("UNLTD-30", "postpaid")]
FAILURE_CAUSES = [17, 17, 19, 18, 21, 34, 42, 44, 31, 20]
CURRENCY = "EUR"
OUTCOMES = ["completed"] * 10 + ["dropped"] * 2 + ["failed"] * 4 + ["answered"] + ["attempted"]
# The churn model's windows for this 15-day history (dbt vars `churn_<name>`, passed to dbt as the
# DBT_CHURN_<NAME> environment variables): short enough that cut-offs have complete windows, long
# enough that the earlier ones do not, and the two churners fall in label windows.
CHURN_WINDOWS = {
    "horizon_days": 3,
    "recent_days": 3,
    "baseline_days": 6,
    "spend_days": 4,
    "drop_window_days": 7,
    "min_answered_calls": 3,
    "backtest_step_days": 1,
    "backtest_min_history_days": 3,
    "precision_k": 3,
}


@dataclass(frozen=True)
class Member:
    member_id: str
    msisdn: str
    imsi: str
    imei: str
    plan_id: str
    plan_type: str
    activated_at: datetime


def _members(count: int, start: datetime) -> list[Member]:
    out = []
    for i in range(count):
        plan_id, plan_type = PLANS[i % len(PLANS)]
        out.append(
            Member(
                member_id=f"M{i:06d}",
                msisdn=f"4477009{i:05d}",
                imsi=f"23415{i:010d}",
                imei=f"35693803{i:07d}",
                plan_id=plan_id,
                plan_type=plan_type,
                activated_at=start - timedelta(days=30 + 7 * (i % 20), hours=i % 24),
            )
        )
    return out


def _event(
    event_type: str, key: str, at: datetime, member: Member, corr: str, producer: str, payload: dict[str, Any]
) -> Event:
    return make_event(
        event_type,
        business_key=key,
        occurred_at=at,
        member_id=member.member_id,
        correlation_id=corr,
        producer=producer,
        payload=payload,
    )


def _lifecycle(members: list[Member]) -> Iterator[Event]:
    for m in members:
        yield _event(
            "member_activated",
            m.member_id,
            m.activated_at,
            m,
            m.member_id,
            "crm",
            {
                "plan_id": m.plan_id,
                "plan_type": m.plan_type,
                "served_msisdn": m.msisdn,
                "served_imsi": m.imsi,
                "served_imei": m.imei,
                "home_plmn_id": "23415",
            },
        )


def generate_events(
    days: int = 15, members: int = 12, calls_per_member_day: int = 4, seed: int = 7, end: datetime = AS_OF
) -> list[Event]:
    """The whole history: lifecycle events plus ``days`` days of usage ending at ``end``."""
    rng = random.Random(seed)
    start = (end - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    people = _members(members, start)
    events: list[Event] = list(_lifecycle(people))
    # Lifecycle changes late in the history: plan change, port-out request, deactivation.
    if members >= 4:
        m1, m2, m3 = people[1], people[2], people[3]
        events.append(
            _event(
                "plan_changed",
                f"{m1.member_id}:1",
                start + timedelta(days=2),
                m1,
                m1.member_id,
                "crm",
                {"old_plan_id": m1.plan_id, "new_plan_id": "PAYG-10", "new_plan_type": "prepaid"},
            )
        )
        events.append(
            _event(
                "port_out_requested",
                m2.member_id,
                end - timedelta(days=2),
                m2,
                m2.member_id,
                "crm",
                {"served_msisdn": m2.msisdn, "recipient_operator": "other-mobile-uk"},
            )
        )
        events.append(
            _event(
                "member_deactivated",
                m3.member_id,
                end - timedelta(days=1),
                m3,
                m3.member_id,
                "crm",
                {"reason": "non_payment"},
            )
        )
    for day in range(days):
        day_start = start + timedelta(days=day)
        for index, member in enumerate(people):
            daily_calls = calls_per_member_day + (index % 3) - (1 if day % 5 == 0 else 0)
            for n in range(max(daily_calls, 0)):
                at = day_start + timedelta(seconds=rng.randrange(0, 86_400))
                if at > end:
                    continue
                events.extend(_call(rng, member, f"{member.member_id}-{day}-{n}", at, end))
            for n in range(index % 4):
                at = day_start + timedelta(seconds=rng.randrange(0, 86_400))
                if at <= end:
                    events.extend(_sms(member, f"{member.member_id}-{day}-s{n}", at))
            if (index + day) % 2 == 0:
                at = day_start + timedelta(seconds=rng.randrange(0, 86_400))
                if at <= end:
                    events.extend(_data(rng, member, f"{member.member_id}-{day}-d", at))
            if member.plan_type == "prepaid" and (index + day) % 6 == 0:
                at = day_start + timedelta(hours=9 + index % 10)
                if at <= end:
                    events.append(
                        _event(
                            "topup_completed",
                            f"{member.member_id}-{day}-t",
                            at,
                            member,
                            f"{member.member_id}-{day}-t",
                            "ocs",
                            {"amount_micros": 10_000_000, "currency": CURRENCY, "channel": "app"},
                        )
                    )
    return events


def _leg(member: Member, cell: tuple[str, int, str], other: str) -> dict[str, Any]:
    return {
        "record_type": "mo_call_record",
        "calling_party_number": member.msisdn,
        "called_party_number": other,
        "served_imsi": member.imsi,
        "served_imei": member.imei,
        "cell_id": cell[0],
        "location_area_code": cell[1],
        "rat_type": cell[2],
        "roaming": False,
    }


def _call(rng: random.Random, member: Member, call_id: str, at: datetime, end: datetime) -> list[Event]:
    cell = CELLS[rng.randrange(len(CELLS))]
    leg = _leg(member, cell, f"44770{rng.randrange(10**7):07d}")
    outcome = OUTCOMES[rng.randrange(len(OUTCOMES))]
    out = [_event("call_attempted", call_id, at, member, call_id, "msc-mediation", leg)]
    if outcome == "failed":
        code = FAILURE_CAUSES[rng.randrange(len(FAILURE_CAUSES))]
        from cdr_platform.events import Q850_CAUSE_NAMES

        out.append(
            _event(
                "call_failed",
                call_id,
                at + timedelta(seconds=20),
                member,
                call_id,
                "msc-mediation",
                {**leg, "cause": {"code": code, "name": Q850_CAUSE_NAMES[code]}},
            )
        )
        return out
    if outcome == "attempted":
        return out
    answered = at + timedelta(seconds=rng.randrange(3, 25))
    if answered > end:
        return out
    out.append(_event("call_answered", call_id, answered, member, call_id, "msc-mediation", leg))
    if outcome == "answered":
        return out
    duration = round(rng.uniform(5, 900), 1)
    released = answered + timedelta(seconds=duration)
    if released > end:
        return out
    if outcome == "dropped":
        last = CELLS[rng.randrange(len(CELLS))]
        release = _event(
            "call_dropped",
            call_id,
            released,
            member,
            call_id,
            "msc-mediation",
            {**_leg(member, last, leg["called_party_number"]), "call_duration_s": duration},
        )
    else:
        release = _event(
            "call_ended",
            call_id,
            released,
            member,
            call_id,
            "msc-mediation",
            {**leg, "call_duration_s": duration},
        )
    out.append(release)
    seconds = int(duration + 0.999)
    out.append(_rating(member, call_id, release, "voice", seconds, "second", 1_000 * seconds, released))
    return out


def _rating(
    member: Member, corr: str, rated: Event, kind: str, quantity: int, unit: str, charge: int, at: datetime
) -> Event:
    return _event(
        "usage_rated",
        f"{corr}:{rated.event_type}",
        at + timedelta(seconds=2),
        member,
        corr,
        "ocs",
        {
            "rated_event_id": rated.event_id,
            "rated_event_type": rated.event_type,
            "usage_kind": kind,
            "quantity": quantity,
            "quantity_unit": unit,
            "tariff_id": f"T-{kind.upper()}",
            "charge_micros": charge,
            "currency": CURRENCY,
        },
    )


def _sms(member: Member, message_id: str, at: datetime) -> list[Event]:
    payload = {
        "served_imsi": member.imsi,
        "served_msisdn": member.msisdn,
        "destination_number": "447700900999",
        "service_centre": "447785016005",
        "message_reference": 7,
        "cell_id": CELLS[0][0],
        "rat_type": "EUTRAN",
        "roaming": False,
    }
    submitted = _event("sms_submitted", message_id, at, member, message_id, "smsc", payload)
    delivered = _event(
        "sms_delivered", message_id, at + timedelta(seconds=3), member, message_id, "smsc", payload
    )
    return [submitted, delivered, _rating(member, message_id, submitted, "sms", 1, "message", 50_000, at)]


def _data(rng: random.Random, member: Member, session_id: str, at: datetime) -> list[Event]:
    up, down = rng.randrange(10_000, 5_000_000), rng.randrange(100_000, 500_000_000)
    ended = _event(
        "data_session_ended",
        session_id,
        at,
        member,
        session_id,
        "pgw",
        {
            "served_imsi": member.imsi,
            "served_imei": member.imei,
            "served_msisdn": member.msisdn,
            "charging_id": rng.randrange(2**32),
            "access_point_name_ni": "internet",
            "rat_type": "NR",
            "cell_id": CELLS[1][0],
            "roaming": False,
            "data_volume_uplink": up,
            "data_volume_downlink": down,
            "duration_s": 600.0,
        },
    )
    mb = (up + down) // 1_000_000
    return [ended, _rating(member, session_id, ended, "data", up + down, "byte", 100 * mb, at)]


def churn_window_environment() -> dict[str, str]:
    """CHURN_WINDOWS as the environment variables dbt_project.yml reads its churn vars from."""
    return {f"DBT_CHURN_{name.upper()}": str(value) for name, value in CHURN_WINDOWS.items()}


def land_events(con: duckdb.DuckDBPyConnection, events: Iterable[Event], batch_size: int = 20_000) -> int:
    """Land events through the real landing path (one transaction per batch); returns how many landed."""
    records = [SourceRecord(encode_event(e), f"test/{i}") for i, e in enumerate(events)]
    landed = 0
    for low in range(0, len(records), batch_size):
        landed += land_batch(con, LandingBatch("kinesis", records[low : low + batch_size])).landed
    return landed


__all__ = [
    "AS_OF",
    "CELLS",
    "CHURN_WINDOWS",
    "churn_window_environment",
    "event_id_for",
    "generate_events",
    "land_events",
]
