"""parse_event never raises: each kind of bad record becomes a Rejection with a precise reason and detail."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from cdr_platform.events import (
    EVENT_CLASSES,
    MAX_EVENT_BYTES,
    Rejection,
    RejectionReason,
    encode_event,
    parse_event,
)
from cdr_platform.events.codec import _parse_with_diagnosis

from .samples import build_event

pytestmark = pytest.mark.unit

R = RejectionReason


def valid_doc(event_type: str = "call_ended") -> dict[str, Any]:
    return json.loads(encode_event(build_event(event_type)))


def rejection_of(raw: bytes | str, **kwargs: Any) -> Rejection:
    result = parse_event(raw, **kwargs)
    assert isinstance(result, Rejection), result
    return result


def rejection_of_doc(doc: Any) -> Rejection:
    return rejection_of(json.dumps(doc))


EVENT_ID = valid_doc()["event_id"]


def test_not_utf8() -> None:
    raw = encode_event(build_event("call_ended")).replace(b"M0001234", b"M\xff\xfe01234")
    offset = raw.index(b"\xff")
    assert rejection_of(raw) == Rejection(R.NOT_UTF8, f"invalid UTF-8 at byte {offset}: invalid start byte")


def test_str_with_lone_surrogate_is_not_utf8() -> None:
    assert rejection_of('{"a": "\ud800"}') == Rejection(
        R.NOT_UTF8, "text is not encodable as UTF-8 at index 7"
    )


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"", "invalid JSON at line 1 column 1: Expecting value"),
        (
            b'{"event_type": "call_ended",',
            "invalid JSON at line 1 column 29: Expecting property name enclosed in double quotes",
        ),
        (b'{"a": NaN}', "invalid JSON: NaN is not a JSON value"),
        (b"[" * 100_000, None),
    ],
)
def test_not_json(raw: bytes, detail: str | None) -> None:
    rejection = rejection_of(raw, max_bytes=len(raw))
    assert rejection.reason is R.NOT_JSON
    if detail is not None:
        assert rejection.detail == detail


@pytest.mark.parametrize(
    ("raw", "kind"),
    [(b"[1, 2]", "array"), (b'"call_ended"', "string"), (b"null", "null"), (b"42", "integer")],
)
def test_not_an_object(raw: bytes, kind: str) -> None:
    assert rejection_of(raw) == Rejection(R.NOT_AN_OBJECT, f"expected a JSON object, got {kind}")


def test_oversize_is_checked_before_parsing() -> None:
    raw = b"{" + b" " * MAX_EVENT_BYTES  # not JSON either: size must win
    assert rejection_of(raw) == Rejection(
        R.OVERSIZE, f"record is {MAX_EVENT_BYTES + 1} bytes, the limit is 65536"
    )


def test_oversize_limit_is_configurable() -> None:
    raw = encode_event(build_event("call_ended"))
    assert rejection_of(raw, max_bytes=100) == Rejection(
        R.OVERSIZE, f"record is {len(raw)} bytes, the limit is 100"
    )
    assert not isinstance(parse_event(raw, max_bytes=len(raw)), Rejection)


def test_oversize_counts_utf8_bytes_of_str_input() -> None:
    doc = valid_doc()
    doc["member_id"] = "é" * 40  # 40 characters, 80 bytes
    text = json.dumps(doc, ensure_ascii=False)
    limit = len(text) + 10
    assert rejection_of(text, max_bytes=limit).reason is R.OVERSIZE


def test_missing_top_level_field() -> None:
    doc = valid_doc()
    del doc["member_id"]
    assert rejection_of_doc(doc) == Rejection(
        R.MISSING_FIELD, "missing field 'member_id'", "call_ended", EVENT_ID
    )


def test_missing_payload_field() -> None:
    doc = valid_doc()
    del doc["payload"]["call_duration_s"]
    expected = Rejection(R.MISSING_FIELD, "missing field 'payload.call_duration_s'", "call_ended", EVENT_ID)
    assert rejection_of_doc(doc) == expected


def test_missing_nested_payload_field() -> None:
    doc = valid_doc("call_failed")
    del doc["payload"]["cause"]["code"]
    rejection = rejection_of_doc(doc)
    assert (rejection.reason, rejection.detail) == (R.MISSING_FIELD, "missing field 'payload.cause.code'")


def test_missing_event_type_still_reports_the_event_id() -> None:
    doc = valid_doc()
    del doc["event_type"]
    assert rejection_of_doc(doc) == Rejection(R.MISSING_FIELD, "missing field 'event_type'", None, EVENT_ID)


def test_missing_schema_version() -> None:
    doc = valid_doc()
    del doc["schema_version"]
    expected = Rejection(R.MISSING_FIELD, "missing field 'schema_version'", "call_ended", EVENT_ID)
    assert rejection_of_doc(doc) == expected


@pytest.mark.parametrize(
    ("field", "value", "detail"),
    [
        ("event_type", 7, "field 'event_type' must be a string, got integer"),
        ("schema_version", "2", "field 'schema_version' must be an integer, got string"),
        ("schema_version", True, "field 'schema_version' must be an integer, got boolean"),
        (
            "member_id",
            1234,
            "field 'member_id' has the wrong type: Input should be a valid string, got integer",
        ),
        (
            "occurred_at",
            1740832215,
            "field 'occurred_at' has the wrong type: Input should be a valid datetime, got integer",
        ),
        ("payload", "{}", "field 'payload' has the wrong type: Input should be an object, got string"),
    ],
)
def test_wrong_type_at_top_level(field: str, value: Any, detail: str) -> None:
    doc = valid_doc()
    doc[field] = value
    rejection = rejection_of_doc(doc)
    assert (rejection.reason, rejection.detail) == (R.WRONG_TYPE, detail)
    assert rejection.event_id == EVENT_ID


@pytest.mark.parametrize(
    ("field", "value", "detail"),
    [
        ("call_duration_s", "83.4", "Input should be a valid number, got string"),
        ("location_area_code", 4321.5, "Input should be a valid integer, got number"),
        ("location_area_code", "4321", "Input should be a valid integer, got string"),
        ("roaming", 0, "Input should be a valid boolean, got integer"),
        ("served_imsi", 234150123456789, "Input should be a valid string, got integer"),
    ],
)
def test_wrong_type_in_payload_is_not_coerced(field: str, value: Any, detail: str) -> None:
    doc = valid_doc()
    doc["payload"][field] = value
    expected = Rejection(
        R.WRONG_TYPE, f"field 'payload.{field}' has the wrong type: {detail}", "call_ended", EVENT_ID
    )
    assert rejection_of_doc(doc) == expected


@pytest.mark.parametrize(
    ("path", "value", "detail"),
    [
        (
            ("payload", "call_duration_s"),
            -1.5,
            "invalid value for field 'payload.call_duration_s': Input should be greater than or equal to 0, "
            "got -1.5",
        ),
        (
            ("occurred_at",),
            "2025-03-01T12:30:15",
            "invalid value for field 'occurred_at': Input should have timezone info, "
            "got '2025-03-01T12:30:15'",
        ),
        (
            ("occurred_at",),
            "yesterday",
            "invalid value for field 'occurred_at': Input should be a valid datetime, input is too short, "
            "got 'yesterday'",
        ),
        (
            ("payload", "rat_type"),
            "LTE",
            "invalid value for field 'payload.rat_type': Input should be 'GERAN', 'UTRAN', 'EUTRAN' or 'NR', "
            "got 'LTE'",
        ),
        (
            ("payload", "served_imsi"),
            "23415-012345",
            "invalid value for field 'payload.served_imsi': String should match pattern '^[0-9]{6,15}$', "
            "got '23415-012345'",
        ),
        (
            ("event_id",),
            "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            "invalid value for field 'event_id': UUID version 5 expected, "
            "got '1b4e28ba-2fa1-11d2-883f-0016d3cca427'",
        ),
        (
            ("producer",),
            "",
            "invalid value for field 'producer': String should match pattern "
            "'^[a-z][a-z0-9-]{0,62}$', got ''",
        ),
        (("payload", "colour"), "red", "unexpected field 'payload.colour'"),
        (
            ("occurred_at",),
            "0001-01-01T00:00:00+01:00",
            "invalid value for field 'occurred_at': 0001-01-01T00:00:00+01:00 is outside the "
            "representable UTC range, got '0001-01-01T00:00:00+01:00'",
        ),
        (
            ("payload", "location_area_code"),
            65536,
            "invalid value for field 'payload.location_area_code': "
            "Input should be less than or equal to 65535, got 65536",
        ),
    ],
)
def test_invalid_value(path: tuple[str, ...], value: Any, detail: str) -> None:
    doc = valid_doc()
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    rejection = rejection_of_doc(doc)
    assert (rejection.reason, rejection.detail) == (R.INVALID_VALUE, detail)
    assert rejection.event_type == "call_ended"


def test_invalid_value_from_a_model_rule() -> None:
    doc = valid_doc("call_failed")
    doc["payload"]["cause"] = {"code": 19, "name": "user_busy"}
    rejection = rejection_of_doc(doc)
    assert (rejection.reason, rejection.detail) == (
        R.INVALID_VALUE,
        "invalid value for field 'payload.cause': Q.850 cause 19 is 'no_answer_from_user', not 'user_busy'",
    )


def test_schema_version_zero_is_invalid() -> None:
    doc = valid_doc()
    doc["schema_version"] = 0
    assert rejection_of_doc(doc) == Rejection(
        R.INVALID_VALUE, "field 'schema_version' must be >= 1, got 0", "call_ended", EVENT_ID
    )


def test_several_errors_are_counted_after_the_first() -> None:
    doc = valid_doc()
    del doc["payload"]["call_duration_s"]
    doc["payload"]["roaming"] = "no"
    doc["member_id"] = ""
    rejection = rejection_of_doc(doc)
    assert rejection.detail == (
        "invalid value for field 'member_id': String should have at least 1 character, got '' "
        "(and 2 more errors)"
    )


def test_unknown_event_type() -> None:
    doc = valid_doc()
    doc["event_type"] = "call_teleported"
    expected = Rejection(
        R.UNKNOWN_EVENT_TYPE, "unknown event_type 'call_teleported'", "call_teleported", EVENT_ID
    )
    assert rejection_of_doc(doc) == expected


def test_future_schema_version() -> None:
    doc = valid_doc()
    doc["schema_version"] = 3
    expected = Rejection(
        R.FUTURE_SCHEMA_VERSION,
        "schema_version 3 of 'call_ended' is newer than the supported 2",
        "call_ended",
        EVENT_ID,
    )
    assert rejection_of_doc(doc) == expected


def test_unreadable_event_id_is_left_out() -> None:
    doc = valid_doc()
    doc["event_id"] = "not-a-uuid"
    rejection = rejection_of_doc(doc)
    assert rejection.reason is R.INVALID_VALUE
    assert rejection.event_id is None


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00",
        b"\xef\xbb\xbf{}",
        b"{}",
        b'{"event_type": null}',
        b'{"event_type": "call_ended", "schema_version": 1}',
        b'{"event_type": "usage_rated", "schema_version": 1, "payload": {"charge": "x", "usage_kind": []}}',
        b'{"event_type": "call_ended", "schema_version": 1e400}',
        "\ufeff{}",
        b'{"event_type": "call_ended", "schema_version": 2, "member_id": "\\ud800"}',
        b"1" * 5000,
    ],
)
def test_odd_inputs_are_rejected_without_raising(raw: bytes | str) -> None:
    assert isinstance(parse_event(raw), Rejection)


@pytest.mark.parametrize("version", [True, 1.0])
def test_schema_version_must_be_a_real_integer(version: Any) -> None:
    doc = valid_doc("member_activated")
    doc["schema_version"] = version
    rejection = rejection_of_doc(doc)
    assert rejection.reason is R.WRONG_TYPE


def test_fast_and_diagnosing_paths_agree_on_mutated_documents() -> None:
    """The fast path is only an optimisation: for any input, both paths give the same result."""
    rng = random.Random(20250301)
    values: list[Any] = [None, True, 0, -1, 1.5, "", "x", "NR", [], {}, 2**70, "2025-01-01T00:00:00Z"]
    for _ in range(3000):
        doc = valid_doc(rng.choice(sorted(EVENT_CLASSES)))
        for _ in range(rng.randint(1, 3)):
            target = doc if rng.random() < 0.4 else doc.get("payload")
            if not isinstance(target, dict) or not target:
                break
            key = rng.choice(list(target))
            if rng.random() < 0.3:
                del target[key]
            else:
                target[key] = rng.choice(values)
        raw = json.dumps(doc).encode()
        assert parse_event(raw) == _parse_with_diagnosis(raw), raw
