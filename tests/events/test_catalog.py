"""The catalog's tables agree with each other, and make_event enforces the model."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from pydantic import ValidationError

from cdr_platform.events import (
    CURRENT_SCHEMA_VERSIONS,
    EVENT_CLASSES,
    MEMBER_EVENT_TYPES,
    PAYLOAD_MODELS,
    USAGE_EVENT_TYPES,
    CallEndedPayload,
    Q850Cause,
    UnknownEventTypeError,
    make_event,
)

from .samples import SAMPLE_PAYLOADS, build_event

pytestmark = pytest.mark.unit


def test_categories_partition_the_event_types() -> None:
    assert set(EVENT_CLASSES) == USAGE_EVENT_TYPES | MEMBER_EVENT_TYPES
    assert not USAGE_EVENT_TYPES & MEMBER_EVENT_TYPES
    assert {
        "member_activated",
        "plan_changed",
        "port_out_requested",
        "member_deactivated",
    } == MEMBER_EVENT_TYPES
    assert {"call_ended", "sms_delivered", "data_session_ended", "usage_rated", "topup_completed"} <= (
        USAGE_EVENT_TYPES
    )


def test_tables_cover_every_type() -> None:
    assert set(CURRENT_SCHEMA_VERSIONS) == set(PAYLOAD_MODELS) == set(EVENT_CLASSES)
    assert CURRENT_SCHEMA_VERSIONS["call_ended"] == 2
    assert CURRENT_SCHEMA_VERSIONS["usage_rated"] == 2
    assert PAYLOAD_MODELS["call_ended"] is CallEndedPayload


def test_make_event_accepts_a_payload_model() -> None:
    payload = CallEndedPayload(**SAMPLE_PAYLOADS["call_ended"])
    assert build_event("call_ended") == make_event(
        "call_ended",
        business_key="key-1",
        occurred_at=build_event("call_ended").occurred_at,
        member_id="M0001234",
        correlation_id="call-0001",
        producer="msc-mediation",
        payload=payload,
    )


def test_make_event_rejects_unknown_types() -> None:
    with pytest.raises(UnknownEventTypeError, match="unknown event_type 'call_teleported'; known types: "):
        make_event(
            "call_teleported",
            business_key="k",
            occurred_at=datetime.now().astimezone(),
            member_id="M1",
            correlation_id="c1",
            producer="crm",
            payload={},
        )


def test_make_event_rejects_naive_datetimes() -> None:
    with pytest.raises(ValidationError, match="occurred_at\n  Input should have timezone info"):
        make_event(
            "member_deactivated",
            business_key="k",
            occurred_at=datetime(2025, 1, 1, 12, 0),
            member_id="M1",
            correlation_id="c1",
            producer="crm",
            payload={"reason": "fraud"},
        )


def test_events_are_immutable() -> None:
    event = build_event("call_ended")
    with pytest.raises(ValidationError, match="frozen"):
        event.member_id = "someone-else"  # type: ignore[misc]


def test_q850_cause_name_must_match_its_code() -> None:
    assert Q850Cause.of(34) == Q850Cause(code=34, name="no_circuit_channel_available")
    with pytest.raises(
        ValidationError, match=re.escape("Q.850 cause 17 is 'user_busy', not 'no_answer_from_user'")
    ):
        Q850Cause(code=17, name="no_answer_from_user")
    with pytest.raises(ValidationError, match=re.escape("unsupported Q.850 cause code 99")):
        Q850Cause(code=99, name="whatever")


def test_rated_quantity_unit_must_fit_the_usage_kind() -> None:
    with pytest.raises(ValidationError, match="voice usage is rated in 'second', not 'byte'"):
        build_event("usage_rated", quantity_unit="byte")
