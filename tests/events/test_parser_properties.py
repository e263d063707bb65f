"""Properties of parsing: for any input, ``parse_event`` returns an event or a storable ``Rejection``.

Inputs start from a valid sample of every (event_type, schema_version) the reader accepts and are
mutated by Hypothesis: fields replaced by any JSON value or by what ``json.dumps`` cannot write
(``1e400``, 5,000-digit integers, lone surrogate escapes, nesting past the recursion limit), removed
or added, the encoding truncated or corrupted; plus arbitrary bytes and text. KPL de-aggregation
gets arbitrary bytes and damaged aggregates re-digested so the damage reaches the decoder.
"""

from __future__ import annotations

import hashlib
import sys
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdr_platform.events import (
    CURRENT_SCHEMA_VERSIONS,
    EVENT_CLASSES,
    UPCASTERS,
    CallEnded,
    Event,
    Rejection,
    RejectionReason,
    UsageRated,
    encode_event,
    parse_event,
)
from cdr_platform.events.codec import MAX_EVENT_BYTES, _parse_with_diagnosis
from cdr_platform.events.framing import (
    DIGEST_SIZE,
    MAGIC,
    UserRecord,
    deaggregate,
    decode_aggregate,
    encode_aggregate,
)
from cdr_platform.events.payloads import INT64_MAX

from .mutations import EXTREME_VALUES, RAW_LITERALS, RawJson, encode_document, nested, objects_in, unstorable
from .samples import SCHEMA_VERSIONS, sample_document

pytestmark = pytest.mark.unit

R = RejectionReason
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""Small enough for the whole module to run in seconds on a loaded 2-core machine; no example database
is written into the checkout. A failure prints the falsifying example to paste into a regression test."""

ANY_TEXT = st.lists(st.characters() | st.characters(categories=["Cs"]), max_size=20).map("".join)
"""Any text, lone surrogates included (``json.dumps`` writes them as ``\\ud800`` escapes). Not ``st.text``,
which drops surrogates from any alphabet."""

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**500), max_value=10**500)
    | st.floats()
    | ANY_TEXT
    | st.sampled_from(EXTREME_VALUES),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(ANY_TEXT, children, max_size=3),
    max_leaves=8,
)
"""Any JSON value, and the hostile ones: NaN and infinities, huge integers, raw literals, deep nesting."""

FIELD_NAMES = st.sampled_from(["extra", "duration_ms", "charge", "call_duration_s", "cause", ""]) | ANY_TEXT


@st.composite
def mutated_documents(draw: st.DrawFn) -> bytes:
    """A sample document of one accepted (event_type, schema_version), mutated one to three times."""
    event_type, version = draw(st.sampled_from(SCHEMA_VERSIONS))
    doc = sample_document(event_type, version)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        target = draw(st.sampled_from(objects_in(doc)))
        action = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
        if action == "add" or not target:
            target[draw(FIELD_NAMES)] = draw(JSON_VALUES)
        elif action == "replace":
            target[draw(st.sampled_from(sorted(target)))] = draw(JSON_VALUES)
        else:
            del target[draw(st.sampled_from(sorted(target)))]
    return encode_document(doc)


@st.composite
def corrupted_encodings(draw: st.DrawFn) -> bytes:
    """A valid sample's bytes, truncated, with bytes overwritten, or with bytes spliced in."""
    raw = bytearray(encode_document(sample_document(*draw(st.sampled_from(SCHEMA_VERSIONS)))))
    action = draw(st.sampled_from(["truncate", "overwrite", "insert"]))
    at = draw(st.integers(min_value=0, max_value=len(raw) - 1))
    if action == "truncate":
        return bytes(raw[:at])
    if action == "overwrite":
        raw[at] = draw(st.integers(min_value=0, max_value=255))
        return bytes(raw)
    return bytes(raw[:at] + draw(st.binary(min_size=1, max_size=16)) + raw[at:])


def assert_event_or_storable_rejection(raw: bytes | str) -> Event | Rejection:
    """``parse_event`` returned (it did not raise) a current-version event or a storable rejection."""
    result = parse_event(raw)
    assert unstorable(result) is None, (result, raw)
    if isinstance(result, Rejection):
        assert isinstance(result.reason, RejectionReason)
        assert result.reason is not R.PARSER_EXCEPTION, "only landing's guard uses this reason"
        assert result.detail
    else:
        assert type(result) is EVENT_CLASSES[result.event_type]
        assert result.schema_version == CURRENT_SCHEMA_VERSIONS[result.event_type]
        assert parse_event(encode_event(result)) == result
    return result


def test_the_samples_cover_every_version_the_reader_accepts() -> None:
    """So the properties below run over every event type and every schema version, upcast ones included."""
    assert {t for t, _ in SCHEMA_VERSIONS} == set(EVENT_CLASSES)
    assert {(t, v) for t, v in SCHEMA_VERSIONS if v < CURRENT_SCHEMA_VERSIONS[t]} == set(UPCASTERS)


@pytest.mark.parametrize(("event_type", "version"), SCHEMA_VERSIONS)
def test_every_accepted_version_parses_into_the_current_event(event_type: str, version: int) -> None:
    event = assert_event_or_storable_rejection(encode_document(sample_document(event_type, version)))
    assert isinstance(event, EVENT_CLASSES[event_type])


@PROPERTY
@given(mutated_documents())
def test_mutated_documents_parse_or_are_rejected_and_both_paths_agree(raw: bytes) -> None:
    result = assert_event_or_storable_rejection(raw)
    if len(raw) <= MAX_EVENT_BYTES:
        assert _parse_with_diagnosis(raw) == result


@PROPERTY
@given(st.sampled_from(SCHEMA_VERSIONS), st.sampled_from(RAW_LITERALS), st.data())
def test_values_json_dumps_cannot_write_never_raise_in_any_field(
    version: tuple[str, int], literal: RawJson, data: st.DataObject
) -> None:
    """Huge numbers, NaN, lone surrogates, deep nesting: rejected, or (``1e-400`` is 0.0) parsed."""
    doc = sample_document(*version)
    target = data.draw(st.sampled_from(objects_in(doc)))
    target[data.draw(st.sampled_from(sorted(target)))] = literal
    assert_event_or_storable_rejection(encode_document(doc))


@PROPERTY
@given(corrupted_encodings())
def test_truncated_or_corrupted_encodings_never_raise(raw: bytes) -> None:
    assert_event_or_storable_rejection(raw)


@PROPERTY
@given(st.binary(max_size=512) | st.binary(max_size=16).map(lambda b: b"{" * 2000 + b))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert_event_or_storable_rejection(raw)


@PROPERTY
@given(ANY_TEXT | st.builds(lambda s: '{"event_type": "' + s + '"}', ANY_TEXT))
def test_arbitrary_text_never_raises(text: str) -> None:
    assert_event_or_storable_rejection(text)


@PROPERTY
@given(st.sampled_from(SCHEMA_VERSIONS), st.data())
def test_any_text_in_any_field_never_raises(version: tuple[str, int], data: st.DataObject) -> None:
    """Text reaches the decoder JSON-escaped, so lone surrogates arrive as ``\\ud800`` escapes."""
    doc = sample_document(*version)
    target = data.draw(st.sampled_from(objects_in(doc)))
    field = data.draw(st.sampled_from(sorted(target)) | st.just("event_type"))
    (doc if field == "event_type" else target)[field] = data.draw(ANY_TEXT)
    assert_event_or_storable_rejection(encode_document(doc))


@pytest.mark.parametrize("where", ["payload", "duration_ms"])
def test_every_nesting_depth_past_the_recursion_limit_is_rejected(where: str) -> None:
    """Exhaustive, since re-encoding failed only in a window of depths that moves with the stack depth."""
    for depth in range(1, sys.getrecursionlimit() + 50):
        doc = sample_document("call_ended", 1)
        if where == "payload":
            doc["payload"]["extra"] = nested(depth)
        else:
            doc["payload"]["duration_ms"] = nested(depth)
        assert isinstance(assert_event_or_storable_rejection(encode_document(doc)), Rejection)


@PROPERTY
@given(st.integers(min_value=-(10**500), max_value=10**500) | st.sampled_from([0, INT64_MAX, INT64_MAX + 1]))
def test_v1_call_duration_of_any_size_is_converted_or_rejected(duration_ms: int) -> None:
    """The reported failure: ``duration_ms=10**400`` raised OverflowError and stopped a landing run."""
    doc = sample_document("call_ended", 1)
    doc["payload"]["duration_ms"] = duration_ms
    result = assert_event_or_storable_rejection(encode_document(doc))
    if 0 <= duration_ms <= INT64_MAX:
        assert isinstance(result, CallEnded)
        assert result.payload.call_duration_s == duration_ms / 1000
    else:
        assert isinstance(result, Rejection)
        assert (result.reason, result.event_type) == (R.INVALID_VALUE, "call_ended")
        assert result.detail.startswith("field 'payload.duration_ms' must be ")


@PROPERTY
@given(
    st.decimals(allow_nan=False, allow_infinity=False).map(str)
    | st.decimals(min_value=0, max_value=10**12, places=6).map(str)
    | st.sampled_from(["1e-999999999999999999", "1.0000000000000000000000000001", "sNaN", "-Infinity"])
    | ANY_TEXT
)
def test_v1_charge_is_converted_exactly_or_rejected(charge: str) -> None:
    doc = sample_document("usage_rated", 1)
    doc["payload"]["charge"] = charge
    result = assert_event_or_storable_rejection(encode_document(doc))
    if isinstance(result, UsageRated):
        assert Decimal(result.payload.charge_micros) == Decimal(charge).scaleb(6)
    else:
        assert result.reason in (R.INVALID_VALUE, R.NOT_UTF8)


@pytest.mark.parametrize(
    ("raw", "rejection"),
    [
        (
            b'{"event_type": "\\ud800x"}',
            Rejection(R.NOT_UTF8, "field 'event_type' holds a lone surrogate, not UTF-8 text"),
        ),
        (
            b'{"event_type": "call_ended", "schema_version": 2, "payload": {"\\udfff": 1}}',
            Rejection(R.NOT_UTF8, "a field name in field 'payload' holds a lone surrogate", "call_ended"),
        ),
        (
            b'{"event_type": "call_ended", "payload": ' + b"[" * 40 + b"]" * 40 + b"}",
            Rejection(
                R.NOT_JSON,
                "JSON nested deeper than 32 levels, at field 'payload" + ".0" * 32 + "'",
                "call_ended",
            ),
        ),
        (
            b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            Rejection(R.NOT_JSON, "JSON nested deeper than 32 levels"),
        ),
        (
            b'{"schema_version": ' + b"9" * 4301 + b"}",
            Rejection(
                R.NOT_JSON, "invalid JSON: an integer literal has 4301 digits, more than the 4300 read"
            ),
        ),
    ],
)
def test_unreadable_documents_are_rejected_naming_the_problem(raw: bytes, rejection: Rejection) -> None:
    assert parse_event(raw) == rejection


def test_quoted_input_is_shortened() -> None:
    doc = sample_document("call_ended")
    doc["schema_version"] = 10**4000
    assert parse_event(encode_document(doc)) == Rejection(
        R.FUTURE_SCHEMA_VERSION,
        f"schema_version {'1' + '0' * 56}... of 'call_ended' is newer than the supported 2",
        "call_ended",
        doc["event_id"],
    )


# KPL framing


USER_RECORDS = st.lists(st.builds(UserRecord, st.text(max_size=8), st.binary(max_size=64)), max_size=8)


def redigest(body: bytes) -> bytes:
    return MAGIC + body + hashlib.md5(body, usedforsecurity=False).digest()


@PROPERTY
@given(USER_RECORDS)
def test_aggregates_round_trip(records: list[UserRecord]) -> None:
    assert decode_aggregate(encode_aggregate(records)) == records


@PROPERTY
@given(st.text(max_size=8), st.binary(max_size=512))
def test_deaggregate_never_raises_on_arbitrary_bytes(partition_key: str, data: bytes) -> None:
    records = deaggregate(partition_key, data)
    if not data.startswith(MAGIC):
        assert records == [UserRecord(partition_key, data)]
    for record in records:
        assert_event_or_storable_rejection(record.data)


@PROPERTY
@given(st.binary(max_size=512) | st.binary(max_size=16).map(lambda b: b"\x0a" + b"\xff" * 50_000 + b))
def test_any_body_with_a_valid_digest_decodes_or_passes_through(body: bytes) -> None:
    """Past the digest check, the protobuf decoder sees any bytes; it never raises and stays linear."""
    data = redigest(body)
    records = deaggregate("k", data)
    assert records == [UserRecord("k", data)] or records == decode_aggregate(data)


@PROPERTY
@given(USER_RECORDS, st.data())
def test_damaged_aggregates_decode_or_pass_through_whole(records: list[UserRecord], data: Any) -> None:
    body = bytearray(encode_aggregate(records)[len(MAGIC) : -DIGEST_SIZE])
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        action = data.draw(st.sampled_from(["truncate", "overwrite", "insert"]))
        at = data.draw(st.integers(min_value=0, max_value=len(body)))
        if action == "truncate":
            del body[at:]
        elif action == "overwrite" and at < len(body):
            body[at] = data.draw(st.integers(min_value=0, max_value=255))
        else:
            body[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    aggregate = redigest(bytes(body))
    decoded = deaggregate("k", aggregate)
    assert decoded == [UserRecord("k", aggregate)] or decoded == decode_aggregate(aggregate)
    for record in decoded:
        assert_event_or_storable_rejection(record.data)
