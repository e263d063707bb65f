"""Every event type survives encode -> parse unchanged, and the JSON/row shapes are stable."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cdr_platform.events import (
    CURRENT_SCHEMA_VERSIONS,
    EVENT_CLASSES,
    CallEnded,
    EventRow,
    encode_event,
    make_event,
    parse_event,
)

from .samples import SAMPLE_PAYLOADS, build_event

pytestmark = pytest.mark.unit


def test_samples_cover_every_event_type() -> None:
    assert set(SAMPLE_PAYLOADS) == set(EVENT_CLASSES)


@pytest.mark.parametrize("event_type", sorted(EVENT_CLASSES))
def test_encode_then_parse_gives_an_equal_event(event_type: str) -> None:
    event = build_event(event_type)
    parsed = parse_event(encode_event(event))
    assert parsed == event
    assert type(parsed) is EVENT_CLASSES[event_type]
    assert parsed.schema_version == CURRENT_SCHEMA_VERSIONS[event_type]


@pytest.mark.parametrize("event_type", sorted(EVENT_CLASSES))
def test_encoding_is_byte_stable(event_type: str) -> None:
    raw = encode_event(build_event(event_type))
    assert encode_event(parse_event(raw)) == raw  # type: ignore[arg-type]


def test_parse_accepts_str_as_well_as_bytes() -> None:
    event = build_event("call_ended")
    assert parse_event(encode_event(event).decode()) == event


def test_json_shape_is_compact_with_envelope_keys_first() -> None:
    raw = encode_event(build_event("call_ended"))
    assert b" " not in raw
    doc = json.loads(raw)
    assert list(doc) == [
        "event_id",
        "event_type",
        "schema_version",
        "occurred_at",
        "member_id",
        "correlation_id",
        "producer",
        "payload",
    ]
    assert doc["occurred_at"] == "2025-03-01T12:30:15.250000Z"
    assert doc["payload"]["call_duration_s"] == 83.4


def test_occurred_at_with_an_offset_is_converted_to_utc() -> None:
    local = datetime(2025, 3, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    event = make_event(
        "call_ended",
        business_key="k",
        occurred_at=local,
        member_id="M1",
        correlation_id="c1",
        producer="msc-mediation",
        payload=SAMPLE_PAYLOADS["call_ended"],
    )
    assert event.occurred_at.tzinfo is UTC
    assert event.occurred_at == datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
    raw = encode_event(event).replace(b"12:30:00Z", b"14:30:00+02:00")
    parsed = parse_event(raw)
    assert parsed == event
    assert parsed.occurred_at.tzinfo is UTC  # type: ignore[union-attr]


def test_defaults_fill_omitted_optional_fields() -> None:
    payload = {k: v for k, v in SAMPLE_PAYLOADS["call_ended"].items() if k != "cause_for_termination"}
    event = build_event("call_ended")
    doc = json.loads(encode_event(event))
    doc["payload"] = payload
    parsed = parse_event(json.dumps(doc))
    assert isinstance(parsed, CallEnded)
    assert parsed.payload.cause_for_termination == "normal_release"


def test_to_row_is_flat_and_carries_the_payload_as_json() -> None:
    event = build_event("data_session_ended")
    row = event.to_row()
    assert isinstance(row, EventRow)
    assert row.event_id == str(event.event_id)
    assert row[1:7] == (
        "data_session_ended",
        1,
        event.occurred_at,
        "M0001234",
        "call-0001",
        "pgw",
    )
    assert json.loads(row.payload_json) == json.loads(encode_event(event))["payload"]
