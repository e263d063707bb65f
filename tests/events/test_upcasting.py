"""Old versions parse into the current model with converted values; bad old documents are refused."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from cdr_platform.events import (
    CURRENT_SCHEMA_VERSIONS,
    UPCASTERS,
    CallEnded,
    Rejection,
    RejectionReason,
    UsageRated,
    encode_event,
    parse_event,
    upcast_document,
)

from .samples import build_event

pytestmark = pytest.mark.unit

R = RejectionReason


def v1_call_ended(**payload_changes: Any) -> dict[str, Any]:
    """A call_ended document as a v1 producer wrote it: ``duration_ms`` and no cause_for_termination."""
    doc = json.loads(encode_event(build_event("call_ended")))
    doc["schema_version"] = 1
    payload = doc["payload"]
    del payload["call_duration_s"], payload["cause_for_termination"]
    payload["duration_ms"] = 83_400
    payload.update(payload_changes)
    return doc


def v1_usage_rated(**payload_changes: Any) -> dict[str, Any]:
    """A usage_rated document as a v1 OCS wrote it: decimal-string ``charge`` and no quantity_unit."""
    doc = json.loads(encode_event(build_event("usage_rated")))
    doc["schema_version"] = 1
    payload = doc["payload"]
    del payload["charge_micros"], payload["quantity_unit"]
    payload["charge"] = "1.25"
    payload.update(payload_changes)
    return doc


def test_call_ended_v1_parses_into_v2() -> None:
    event = parse_event(json.dumps(v1_call_ended()))
    assert isinstance(event, CallEnded)
    assert event.schema_version == 2
    assert event.payload.call_duration_s == 83.4
    assert event.payload.cause_for_termination == "normal_release"
    current = build_event("call_ended")
    assert event.model_copy(update={"payload": current.payload}) == current  # envelope untouched


def test_upcast_event_encodes_as_the_current_version() -> None:
    event = parse_event(json.dumps(v1_call_ended(duration_ms=1)))
    doc = json.loads(encode_event(event))  # type: ignore[arg-type]
    assert doc["schema_version"] == 2
    assert doc["payload"]["call_duration_s"] == 0.001
    assert "duration_ms" not in doc["payload"]


@pytest.mark.parametrize(
    ("charge", "kind", "micros", "unit"),
    [
        ("1.25", "voice", 1_250_000, "second"),
        ("0.000001", "sms", 1, "message"),
        ("12", "data", 12_000_000, "byte"),
    ],
)
def test_usage_rated_v1_parses_into_v2(charge: str, kind: str, micros: int, unit: str) -> None:
    event = parse_event(json.dumps(v1_usage_rated(charge=charge, usage_kind=kind)))
    assert isinstance(event, UsageRated)
    assert (event.schema_version, event.payload.charge_micros, event.payload.quantity_unit) == (
        2,
        micros,
        unit,
    )


@pytest.mark.parametrize(
    ("doc", "reason", "detail"),
    [
        (
            v1_call_ended(duration_ms=None),
            R.WRONG_TYPE,
            "field 'payload.duration_ms' (call_ended v1) must be integer, got null",
        ),
        (v1_call_ended(duration_ms=-5), R.INVALID_VALUE, "field 'payload.duration_ms' must be >= 0, got -5"),
        (
            v1_call_ended(cause_for_termination="abnormal_release"),
            R.INVALID_VALUE,
            "unexpected field 'payload.cause_for_termination' in call_ended v1 document",
        ),
        (
            v1_usage_rated(charge="0.0000001"),
            R.INVALID_VALUE,
            "field 'payload.charge' must be a decimal below 1e12 with at most 6 places, got '0.0000001'",
        ),
        (
            v1_usage_rated(charge="1e999999999"),
            R.INVALID_VALUE,
            "field 'payload.charge' must be a decimal below 1e12 with at most 6 places, got '1e999999999'",
        ),
        (
            v1_usage_rated(charge="about 3"),
            R.INVALID_VALUE,
            "field 'payload.charge' must be a decimal below 1e12 with at most 6 places, got 'about 3'",
        ),
        (
            v1_usage_rated(charge=1.25),
            R.WRONG_TYPE,
            "field 'payload.charge' (usage_rated v1) must be string, got number",
        ),
        (
            v1_usage_rated(usage_kind="video"),
            R.INVALID_VALUE,
            "invalid value for field 'payload.usage_kind': Input should be 'voice', 'sms' or 'data', "
            "got 'video' (and 1 more error)",
        ),
    ],
)
def test_bad_v1_documents_are_rejected(doc: dict[str, Any], reason: RejectionReason, detail: str) -> None:
    rejection = parse_event(json.dumps(doc))
    assert isinstance(rejection, Rejection)
    assert (rejection.reason, rejection.detail, rejection.event_id) == (reason, detail, doc["event_id"])


def test_v1_document_missing_the_old_field() -> None:
    doc = v1_call_ended()
    del doc["payload"]["duration_ms"]
    rejection = parse_event(json.dumps(doc))
    assert rejection == Rejection(
        R.MISSING_FIELD, "missing field 'payload.duration_ms' (call_ended v1)", "call_ended", doc["event_id"]
    )


def test_v1_document_without_payload() -> None:
    doc = v1_call_ended()
    del doc["payload"]
    rejection = parse_event(json.dumps(doc))
    assert isinstance(rejection, Rejection)
    assert (rejection.reason, rejection.detail) == (R.MISSING_FIELD, "missing field 'payload'")


def test_upcast_document_does_not_mutate_its_input() -> None:
    doc = v1_call_ended()
    before = copy.deepcopy(doc)
    upcast_document(doc, "call_ended", 1)
    assert doc == before


def test_every_older_version_has_an_upcaster() -> None:
    expected = {(t, v) for t, current in CURRENT_SCHEMA_VERSIONS.items() for v in range(1, current)}
    assert set(UPCASTERS) == expected == {("call_ended", 1), ("usage_rated", 1)}
