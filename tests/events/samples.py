"""Valid sample payloads for every event type, builders for whole events from them, and their documents
at every schema version a reader accepts."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cdr_platform.events import CURRENT_SCHEMA_VERSIONS, Event, encode_event, event_id_for, make_event

CALL_LEG: dict[str, Any] = {
    "record_type": "mo_call_record",
    "calling_party_number": "447700900123",
    "called_party_number": "447700900456",
    "served_imsi": "234150123456789",
    "served_imei": "356938035643809",
    "cell_id": "234-15-0x1a2b3c4",
    "location_area_code": 4321,
    "rat_type": "EUTRAN",
    "roaming": False,
}
SMS_LEG: dict[str, Any] = {
    "served_imsi": "234150123456789",
    "served_msisdn": "447700900123",
    "destination_number": "447700900456",
    "service_centre": "447785016005",
    "message_reference": 42,
    "cell_id": "234-15-0x1a2b3c4",
    "rat_type": "NR",
    "roaming": True,
}
SAMPLE_PAYLOADS: dict[str, dict[str, Any]] = {
    "call_attempted": CALL_LEG,
    "call_answered": {**CALL_LEG, "record_type": "mt_call_record", "served_imei": None},
    "call_ended": {**CALL_LEG, "call_duration_s": 83.4, "cause_for_termination": "partial_record"},
    "call_dropped": {**CALL_LEG, "rat_type": "UTRAN", "call_duration_s": 12.0},
    "call_failed": {**CALL_LEG, "cause": {"code": 17, "name": "user_busy"}},
    "sms_submitted": SMS_LEG,
    "sms_delivered": SMS_LEG,
    "sms_failed": {**SMS_LEG, "cell_id": None, "failure_cause": "absent_subscriber"},
    "data_session_ended": {
        "served_imsi": "234150123456789",
        "served_imei": "356938035643809",
        "served_msisdn": "447700900123",
        "charging_id": 3_000_000_001,
        "access_point_name_ni": "internet.operator.example",
        "rat_type": "EUTRAN",
        "cell_id": "234-15-0x1a2b3c4",
        "roaming": False,
        "data_volume_uplink": 1_234_567,
        "data_volume_downlink": 98_765_432_100,
        "duration_s": 1800.5,
        "cause_for_rec_closing": "volume_limit",
    },
    "usage_rated": {
        "rated_event_id": event_id_for("call_ended", "call-0001"),
        "rated_event_type": "call_ended",
        "usage_kind": "voice",
        "quantity": 84,
        "quantity_unit": "second",
        "tariff_id": "T-VOICE-NAT-2025",
        "charge_micros": 1_250_000,
        "currency": "EUR",
    },
    "topup_completed": {"amount_micros": 20_000_000, "currency": "GBP", "channel": "voucher"},
    "usage_refused": {
        "usage_kind": "voice",
        "reason": "insufficient_balance",
        "tariff_id": "PAYG-10-VOICE",
        "balance_micros": 30_000,
        "required_micros": 80_000,
        "currency": "EUR",
    },
    "plan_fee_charged": {
        "plan_id": "POSTPAID-30",
        "plan_type": "postpaid",
        "period_start": "2025-03-01",
        "period_end": "2025-04-01",
        "charge_micros": 20_000_000,
        "currency": "EUR",
    },
    "member_activated": {
        "plan_id": "PAYG-10",
        "plan_type": "prepaid",
        "served_msisdn": "447700900123",
        "served_imsi": "234150123456789",
        "served_imei": "356938035643809",
        "home_plmn_id": "23415",
    },
    "plan_changed": {"old_plan_id": "PAYG-10", "new_plan_id": "UNLTD-30", "new_plan_type": "postpaid"},
    "port_out_requested": {"served_msisdn": "447700900123", "recipient_operator": "other-mobile-uk"},
    "member_deactivated": {"reason": "port_out"},
}
OCCURRED_AT = datetime(2025, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC)
PRODUCERS = {"call": "msc-mediation", "sms": "smsc", "data": "pgw", "usage": "ocs", "topup": "ocs"}


def build_event(event_type: str, business_key: str = "key-1", **payload_overrides: Any) -> Event:
    """A valid event of ``event_type`` from the sample payload, with payload fields overridden."""
    return make_event(
        event_type,
        business_key=business_key,
        occurred_at=OCCURRED_AT,
        member_id="M0001234",
        correlation_id="call-0001",
        producer=PRODUCERS.get(event_type.split("_")[0], "crm"),
        payload={**SAMPLE_PAYLOADS[event_type], **payload_overrides},
    )


def _call_ended_v1(payload: dict[str, Any]) -> dict[str, Any]:
    """A v1 producer wrote ``duration_ms`` and no cause_for_termination."""
    old = {k: v for k, v in payload.items() if k not in ("call_duration_s", "cause_for_termination")}
    return {**old, "duration_ms": round(payload["call_duration_s"] * 1000)}


def _usage_rated_v1(payload: dict[str, Any]) -> dict[str, Any]:
    """A v1 OCS wrote ``charge`` as a decimal string in major units, and no quantity_unit."""
    old = {k: v for k, v in payload.items() if k not in ("charge_micros", "quantity_unit")}
    return {**old, "charge": str(Decimal(payload["charge_micros"]).scaleb(-6))}


OLD_PAYLOAD_SHAPES: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("call_ended", 1): _call_ended_v1,
    ("usage_rated", 1): _usage_rated_v1,
}
"""(event_type, version) -> how a current sample payload looked at that older version."""

SCHEMA_VERSIONS: list[tuple[str, int]] = sorted(
    (event_type, version)
    for event_type, current in CURRENT_SCHEMA_VERSIONS.items()
    for version in range(1, current + 1)
)
"""Every (event_type, schema_version) a reader accepts: the current ones and every older one it upcasts."""


def sample_document(
    event_type: str, version: int | None = None, business_key: str = "key-1"
) -> dict[str, Any]:
    """The decoded JSON of a valid sample event as a producer of ``version`` (default: current) wrote it.

    Raises ``KeyError`` for an older version without an entry in ``OLD_PAYLOAD_SHAPES``, so a version bump
    without its sample fails the tests that iterate ``SCHEMA_VERSIONS``.
    """
    doc: dict[str, Any] = json.loads(encode_event(build_event(event_type, business_key)))
    if version is None or version == CURRENT_SCHEMA_VERSIONS[event_type]:
        return doc
    return {
        **doc,
        "schema_version": version,
        "payload": OLD_PAYLOAD_SHAPES[(event_type, version)](doc["payload"]),
    }
