"""Turn simulated records into the events, and the EventStoreDB streams, a real network would produce.

Streams (category = the part before the first ``-``):

- ``call-<call_id>``: call_attempted, then call_answered + call_ended|call_dropped + usage_rated, or
  call_failed (busy 17, no answer 19, congestion 34). One stream per call, written when the call record
  is complete (mediation emits CDRs at release).
- ``sms-<sms_id>``: sms_submitted, usage_rated, then sms_delivered|sms_failed.
- ``data-<session_id>``: data_session_ended, usage_rated.
- ``call-|sms-|data-<id>`` of usage the OCS refused (prepaid balance short of the first unit): one
  usage_refused, nothing else (a refused call is released before it is routed: no call record).
- ``balance-<member_id>``: the member's account: topup_completed (prepaid) and plan_fee_charged (the
  postpaid monthly fee).
- ``member-<member_id>``: member_activated, plan_changed, port_out_requested, member_deactivated.

Rating events live in the stream of the usage they price (their correlation_id is the call/SMS/session
id), so one stream holds one business transaction, appended in one request. Every event id is
``uuid5(event_type, business_key)`` with the call/SMS/session/top-up/member id as the key, and those ids
embed the seed: the same seed always gives the same ids, another seed never collides.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cdr_platform.events import CURRENT_SCHEMA_VERSIONS, Event, Rejection, event_id_for, parse_event
from cdr_platform.events.causes import Q850_CAUSE_NAMES
from cdr_platform.simulator.model import CURRENCY, HOME_PLMN_ID
from cdr_platform.simulator.traffic import (
    CAUSE_OF_OUTCOME,
    CallRecord,
    DataSessionRecord,
    LifecycleRecord,
    PlanFeeRecord,
    Record,
    RefusalRecord,
    SmsRecord,
    TopupRecord,
)

SERVICE_CENTRE = "447785016005"
APN = "internet"
STREAM_CATEGORIES = ("call", "sms", "data", "balance", "member")


@dataclass(frozen=True, slots=True)
class ProducedEvent:
    """One event as appended: its envelope fields, its encoded bytes and its stream.

    ``data`` is byte-for-byte what ``encode_event`` writes for the same event (tested for every type),
    built directly because pydantic construction would cap generation at ~35k events/s.
    """

    event_id: str
    event_type: str
    member_id: str
    correlation_id: str
    occurred_at: datetime
    stream: str
    data: bytes

    def to_event(self) -> Event:
        """The validated event model (parses ``data``; raises ``ValueError`` if it is not a valid event)."""
        parsed = parse_event(self.data)
        if isinstance(parsed, Rejection):
            raise ValueError(f"simulated event {self.event_id} is invalid: {parsed.detail}")
        return parsed


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def utc_text(at: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as pydantic writes it (microseconds only when non-zero)."""
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    return at.isoformat()[:-6] + "Z"


REFUSED_STREAM_CATEGORY = {"voice": "call", "sms": "sms", "data": "data"}


def stream_of(record: Record) -> str:
    if isinstance(record, CallRecord):
        return f"call-{record.call_id}"
    if isinstance(record, SmsRecord):
        return f"sms-{record.sms_id}"
    if isinstance(record, DataSessionRecord):
        return f"data-{record.session_id}"
    if isinstance(record, RefusalRecord):
        return f"{REFUSED_STREAM_CATEGORY[record.usage_kind]}-{record.refusal_id}"
    if isinstance(record, TopupRecord | PlanFeeRecord):
        return f"balance-{record.member.member_id}"
    return f"member-{record.member.member_id}"


def _event(
    event_type: str,
    key: str,
    at: datetime,
    member_id: str,
    correlation_id: str,
    producer: str,
    payload: dict[str, Any] | str,
    stream: str,
) -> ProducedEvent:
    """Encode one event; ``payload`` lists the model's fields in order, defaults included, or is that
    dict already encoded (events of one transaction share their payload)."""
    event_id = str(event_id_for(event_type, key))
    # The envelope's strings are identifiers from the model (no quotes or escapes), so a template is safe
    # and twice as fast as encoding the whole document; the payload goes through the JSON encoder.
    data = (
        f'{{"event_id":"{event_id}","event_type":"{event_type}",'
        f'"schema_version":{CURRENT_SCHEMA_VERSIONS[event_type]},"occurred_at":"{utc_text(at)}",'
        f'"member_id":"{member_id}","correlation_id":"{correlation_id}","producer":"{producer}",'
        f'"payload":{payload if isinstance(payload, str) else _dumps(payload)}}}'
    ).encode()
    return ProducedEvent(event_id, event_type, member_id, correlation_id, at, stream, data)


def _rated(
    rated: ProducedEvent,
    key: str,
    at: datetime,
    kind: str,
    quantity: int,
    unit: str,
    tariff: str,
    charge: int,
) -> ProducedEvent:
    payload = (
        f'{{"rated_event_id":"{rated.event_id}","rated_event_type":"{rated.event_type}",'
        f'"usage_kind":"{kind}","quantity":{quantity},"quantity_unit":"{unit}","tariff_id":"{tariff}",'
        f'"charge_micros":{charge},"currency":"{CURRENCY}"}}'
    )
    return _event("usage_rated", key, at, rated.member_id, rated.correlation_id, "ocs", payload, rated.stream)


def call_events(call: CallRecord) -> list[ProducedEvent]:
    member, stream = call.member, stream_of(call)
    mo = call.record_type == "mo_call_record"
    leg: dict[str, Any] = {
        "record_type": call.record_type,
        "calling_party_number": member.msisdn if mo else call.other_party,
        "called_party_number": call.other_party if mo else member.msisdn,
        "served_imsi": member.imsi,
        "served_imei": member.imei,
        "cell_id": call.first_cell.cell_id,
        "location_area_code": call.first_cell.location_area_code,
        "rat_type": call.first_cell.rat_type,
        "roaming": call.roaming,
    }
    mid, key = member.member_id, call.call_id

    def emit(event_type: str, at: datetime, payload: dict[str, Any] | str) -> ProducedEvent:
        return _event(event_type, key, at, mid, key, "msc-mediation", payload, stream)

    encoded_leg = _dumps(leg)
    events = [emit("call_attempted", call.attempted_at, encoded_leg)]
    if call.answered_at is None:
        code = CAUSE_OF_OUTCOME[call.outcome]
        events.append(
            emit(
                "call_failed",
                call.released_at,
                {**leg, "cause": {"code": code, "name": Q850_CAUSE_NAMES[code]}},
            )
        )
        return events
    events.append(emit("call_answered", call.answered_at, encoded_leg))
    dropped = call.outcome == "dropped"
    last = {
        **leg,
        "cell_id": call.last_cell.cell_id,
        "location_area_code": call.last_cell.location_area_code,
        "rat_type": call.last_cell.rat_type,
        "call_duration_s": call.duration_s,
        "cause_for_termination": (
            "abnormal_release"
            if dropped
            else "camel_init_call_release"
            if call.credit_limited
            else "normal_release"
        ),
    }
    ended = emit("call_dropped" if dropped else "call_ended", call.released_at, last)
    seconds = math.ceil(call.duration_s)
    tariff = f"{call.plan.plan_id}-VOICE"
    rated_at = call.released_at + timedelta(seconds=1)
    events += [ended, _rated(ended, key, rated_at, "voice", seconds, "second", tariff, call.charge_micros)]
    return events


def sms_events(sms: SmsRecord) -> list[ProducedEvent]:
    member, stream = sms.member, stream_of(sms)
    leg: dict[str, Any] = {
        "served_imsi": member.imsi,
        "served_msisdn": member.msisdn,
        "destination_number": sms.destination,
        "service_centre": SERVICE_CENTRE,
        "message_reference": sms.message_reference,
        "cell_id": sms.cell.cell_id,
        "rat_type": sms.cell.rat_type,
        "roaming": sms.roaming,
    }
    mid, key = member.member_id, sms.sms_id
    encoded_leg = _dumps(leg)
    submitted = _event("sms_submitted", key, sms.submitted_at, mid, key, "smsc", encoded_leg, stream)
    rated_at = sms.submitted_at + timedelta(seconds=1)
    tariff = f"{sms.plan.plan_id}-SMS"
    events = [submitted, _rated(submitted, key, rated_at, "sms", 1, "message", tariff, sms.charge_micros)]
    if sms.delivered:
        events.append(_event("sms_delivered", key, sms.result_at, mid, key, "smsc", encoded_leg, stream))
    else:
        failed = {**leg, "failure_cause": sms.failure_cause}
        events.append(_event("sms_failed", key, sms.result_at, mid, key, "smsc", failed, stream))
    return events


def data_session_events(session: DataSessionRecord) -> list[ProducedEvent]:
    member = session.member
    payload = {
        "served_imsi": member.imsi,
        "served_imei": member.imei,
        "served_msisdn": member.msisdn,
        "charging_id": session.charging_id,
        "access_point_name_ni": APN,
        "rat_type": session.cell.rat_type,
        "cell_id": session.cell.cell_id,
        "roaming": session.roaming,
        "data_volume_uplink": session.uplink_bytes,
        "data_volume_downlink": session.downlink_bytes,
        "duration_s": session.duration_s,
        "cause_for_rec_closing": session.cause_for_rec_closing,
    }
    mid, key = member.member_id, session.session_id
    ended = _event("data_session_ended", key, session.ended_at, mid, key, "pgw", payload, stream_of(session))
    volume = session.uplink_bytes + session.downlink_bytes
    rated_at = session.ended_at + timedelta(seconds=1)
    tariff = f"{session.plan.plan_id}-DATA"
    return [ended, _rated(ended, key, rated_at, "data", volume, "byte", tariff, session.charge_micros)]


def topup_events(topup: TopupRecord) -> list[ProducedEvent]:
    payload = {"amount_micros": topup.amount_micros, "currency": CURRENCY, "channel": topup.channel}
    key = topup.topup_id
    return [
        _event(
            "topup_completed", key, topup.at, topup.member.member_id, key, "ocs", payload, stream_of(topup)
        )
    ]


def refusal_events(refusal: RefusalRecord) -> list[ProducedEvent]:
    payload = {
        "usage_kind": refusal.usage_kind,
        "reason": "insufficient_balance",
        "tariff_id": f"{refusal.plan.plan_id}-{refusal.usage_kind.upper()}",
        "balance_micros": refusal.balance_micros,
        "required_micros": refusal.required_micros,
        "currency": CURRENCY,
    }
    key, mid = refusal.refusal_id, refusal.member.member_id
    return [_event("usage_refused", key, refusal.at, mid, key, "ocs", payload, stream_of(refusal))]


def plan_fee_events(fee: PlanFeeRecord) -> list[ProducedEvent]:
    payload = {
        "plan_id": fee.plan.plan_id,
        "plan_type": fee.plan.plan_type,
        "period_start": fee.period_start.isoformat(),
        "period_end": fee.period_end.isoformat(),
        "charge_micros": fee.amount_micros,
        "currency": CURRENCY,
    }
    key, mid = fee.fee_id, fee.member.member_id
    return [_event("plan_fee_charged", key, fee.at, mid, key, "ocs", payload, stream_of(fee))]


def lifecycle_events(change: LifecycleRecord) -> list[ProducedEvent]:
    member = change.member
    payload: dict[str, Any]
    key = member.member_id
    if change.kind == "member_activated":
        payload = {
            "plan_id": member.plan.plan_id,
            "plan_type": member.plan.plan_type,
            "served_msisdn": member.msisdn,
            "served_imsi": member.imsi,
            "served_imei": member.imei,
            "home_plmn_id": HOME_PLMN_ID,
        }
    elif change.kind == "plan_changed":
        assert member.new_plan is not None
        payload = {
            "old_plan_id": member.plan.plan_id,
            "new_plan_id": member.new_plan.plan_id,
            "new_plan_type": member.new_plan.plan_type,
        }
        key = f"{member.member_id}:{change.sequence}"
    elif change.kind == "port_out_requested":
        payload = {"served_msisdn": member.msisdn, "recipient_operator": "other-mobile"}
    else:
        payload = {"reason": change.churn_kind}
    mid = member.member_id
    return [_event(change.kind, key, change.at, mid, mid, "crm", payload, stream_of(change))]


def events_of(record: Record) -> list[ProducedEvent]:
    """The events of one record, in the order they are appended to its stream."""
    if isinstance(record, CallRecord):
        return call_events(record)
    if isinstance(record, SmsRecord):
        return sms_events(record)
    if isinstance(record, DataSessionRecord):
        return data_session_events(record)
    if isinstance(record, TopupRecord):
        return topup_events(record)
    if isinstance(record, RefusalRecord):
        return refusal_events(record)
    if isinstance(record, PlanFeeRecord):
        return plan_fee_events(record)
    return lifecycle_events(record)


def produce(records: Iterable[Record]) -> list[ProducedEvent]:
    """Build and encode the events of ``records``, in record order then event order."""
    return [event for record in records for event in events_of(record)]
