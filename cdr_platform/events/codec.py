"""JSON encoding and never-raising parsing of events.

``parse_event`` has two paths. The fast path hands the bytes to pydantic-core's JSON validator over the
tagged union of current event classes; nearly every production record takes it. Anything it refuses (bad
input, or a document at an older schema version) goes to the diagnosing path, which decodes step by step to
name the first problem precisely, and upcasts old versions before validating them against the same model.
Both paths accept exactly the same documents, so the fast path is an optimisation, never a semantic change.

The diagnosing path never hands a document to code that could fail on it: nesting is bounded before the
document is re-encoded (no ``RecursionError``), text holding lone surrogates is refused before it can reach
a rejection or a row (a warehouse VARCHAR takes only valid UTF-8), integers are bounded before upcasters do
arithmetic on them, and every input quoted in a detail is shortened.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from cdr_platform.events.catalog import ANY_EVENT_ADAPTER, CURRENT_SCHEMA_VERSIONS, EVENT_CLASSES
from cdr_platform.events.envelope import Event
from cdr_platform.events.rejection import Rejection, RejectionReason, json_type_name, shorten, storable_text
from cdr_platform.events.upcasting import UpcastError, upcast_document

MAX_EVENT_BYTES = 64 * 1024
"""Default size limit for one encoded event; bigger records are rejected before any JSON parsing."""

MAX_JSON_DEPTH = 32
"""Deepest nesting the diagnosing path reads (an event nests 3 levels); far below any recursion limit."""

MAX_INTEGER_DIGITS = 4300
"""Longest integer literal the diagnosing path reads (Python's default ``int`` conversion limit)."""

_validate_event_json = ANY_EVENT_ADAPTER.validator.validate_json
"""pydantic-core's own validator: ``TypeAdapter.validate_json`` only checks its keyword options before
calling it, which costs a sixth of the fast path (defaults here are the adapter's defaults)."""

_WRONG_TYPE_ERRORS = frozenset(
    {
        "string_type",
        "int_type",
        "float_type",
        "bool_type",
        "dict_type",
        "list_type",
        "model_type",
        "model_attributes_type",
        "uuid_type",
        "datetime_type",
        "int_from_float",
    }
)


def encode_event(event: Event) -> bytes:
    """Compact UTF-8 JSON; keys in model field order (envelope, then payload), so output is byte-stable.

    ``parse_event(encode_event(e)) == e`` for every valid event.
    """
    return event.__pydantic_serializer__.to_json(event)


def parse_event(raw: bytes | str, *, max_bytes: int = MAX_EVENT_BYTES) -> Event | Rejection:
    """Decode one record into its current-version event, or say why it is not one. Never raises on input.

    Documents at an older ``schema_version`` are upcast; a newer one than this code knows is rejected as
    ``future_schema_version`` (deploy the newer reader, then replay the dead letters).
    """
    if isinstance(raw, str):
        try:
            data = raw.encode("utf-8")
        except UnicodeEncodeError as exc:
            return Rejection(RejectionReason.NOT_UTF8, f"text is not encodable as UTF-8 at index {exc.start}")
    else:
        data = bytes(raw)  # a bytearray or memoryview from a client library reads the same
    if len(data) > max_bytes:
        return Rejection(RejectionReason.OVERSIZE, f"record is {len(data)} bytes, the limit is {max_bytes}")
    try:
        return _validate_event_json(data)
    except ValidationError:
        return _parse_with_diagnosis(data)


def _parse_with_diagnosis(data: bytes) -> Event | Rejection:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(RejectionReason.NOT_UTF8, f"invalid UTF-8 at byte {exc.start}: {exc.reason}")
    try:
        doc = json.loads(text, parse_constant=_refuse_non_json_constant, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        detail = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        return Rejection(RejectionReason.NOT_JSON, detail)
    except RecursionError:
        return Rejection(RejectionReason.NOT_JSON, _TOO_DEEP)
    except ValueError as exc:
        return Rejection(RejectionReason.NOT_JSON, f"invalid JSON: {exc}")
    if not isinstance(doc, dict):
        return Rejection(RejectionReason.NOT_AN_OBJECT, f"expected a JSON object, got {json_type_name(doc)}")
    unreadable = _unreadable_part(doc)
    if unreadable is not None:
        reason, detail = unreadable
        event_type = doc.get("event_type")
        known_type = event_type if isinstance(event_type, str) and event_type in EVENT_CLASSES else None
        return Rejection(reason, detail, known_type, _readable_event_id(doc))
    return _parse_document(doc)


_TOO_DEEP = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"


def _unreadable_part(doc: dict[str, Any]) -> tuple[RejectionReason, str] | None:
    """The first part of a decoded document no later step may see: too deep, or not valid Unicode.

    JSON can escape lone surrogates (``"\\ud800"``), which decode to a ``str`` that UTF-8 cannot encode;
    such text would fail later wherever it is stored, so it is refused here, naming the field.
    Iterative, so a deep document costs no stack.
    """
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(doc, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_JSON_DEPTH:
            return RejectionReason.NOT_JSON, f"{_TOO_DEEP}, at field {_dotted(path)!r}"
        if isinstance(value, str):
            if not _is_unicode(value):
                return (
                    RejectionReason.NOT_UTF8,
                    f"field {_dotted(path)!r} holds a lone surrogate, not UTF-8 text",
                )
        elif isinstance(value, dict):
            for key, child in reversed(value.items()):
                if not _is_unicode(key):
                    where = f"field {_dotted(path)!r}" if path else "the record"
                    return RejectionReason.NOT_UTF8, f"a field name in {where} holds a lone surrogate"
                stack.append((child, (*path, key)))
        elif isinstance(value, list):
            stack.extend((child, (*path, index)) for index, child in reversed(list(enumerate(value))))
    return None


def _is_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _dotted(path: tuple[str | int, ...] | list[str | int], limit: int = 100) -> str:
    """A field path as ``payload.cause.code``, cut to ``limit`` characters and always storable."""
    return storable_text(".".join(str(part) for part in path) or "<record>", limit)


def _bounded_int(digits: str) -> int:
    count = len(digits.lstrip("-"))
    if count > MAX_INTEGER_DIGITS:
        raise ValueError(f"an integer literal has {count} digits, more than the {MAX_INTEGER_DIGITS} read")
    return int(digits)


def _parse_document(doc: dict[str, Any]) -> Event | Rejection:
    event_id = _readable_event_id(doc)
    if "event_type" not in doc:
        return Rejection(RejectionReason.MISSING_FIELD, "missing field 'event_type'", event_id=event_id)
    event_type = doc["event_type"]
    if not isinstance(event_type, str):
        detail = f"field 'event_type' must be a string, got {json_type_name(event_type)}"
        return Rejection(RejectionReason.WRONG_TYPE, detail, event_id=event_id)
    if event_type not in EVENT_CLASSES:
        detail = f"unknown event_type {shorten(event_type)}"
        return Rejection(RejectionReason.UNKNOWN_EVENT_TYPE, detail, storable_text(event_type), event_id)

    def reject(reason: RejectionReason, detail: str) -> Rejection:
        return Rejection(reason, detail, event_type, event_id)

    if "schema_version" not in doc:
        return reject(RejectionReason.MISSING_FIELD, "missing field 'schema_version'")
    version = doc["schema_version"]
    if type(version) is not int:
        detail = f"field 'schema_version' must be an integer, got {json_type_name(version)}"
        return reject(RejectionReason.WRONG_TYPE, detail)
    current = CURRENT_SCHEMA_VERSIONS[event_type]
    if version < 1:
        return reject(
            RejectionReason.INVALID_VALUE, f"field 'schema_version' must be >= 1, got {shorten(version)}"
        )
    if version > current:
        detail = f"schema_version {shorten(version)} of {event_type!r} is newer than the supported {current}"
        return reject(RejectionReason.FUTURE_SCHEMA_VERSION, detail)
    try:
        doc = upcast_document(doc, event_type, version)
    except UpcastError as exc:
        return reject(exc.reason, exc.detail)
    try:
        return EVENT_CLASSES[event_type].model_validate_json(json.dumps(doc))
    except ValidationError as exc:
        return reject(*_describe(exc.errors()))


def _describe(errors: list[ErrorDetails]) -> tuple[RejectionReason, str]:
    """Turn pydantic's first error into a reason and a one-line detail naming the dotted field path."""
    error = errors[0]
    field = _dotted(error["loc"])
    kind = error["type"]
    message = storable_text(error["msg"].removeprefix("Value error, "), 200)
    value = error.get("input")
    got = "" if isinstance(value, dict | list) else f", got {shorten(value)}"
    if kind == "missing":
        reason, detail = RejectionReason.MISSING_FIELD, f"missing field {field!r}"
    elif kind == "extra_forbidden":
        reason, detail = RejectionReason.INVALID_VALUE, f"unexpected field {field!r}"
    elif kind in _WRONG_TYPE_ERRORS:
        reason = RejectionReason.WRONG_TYPE
        detail = f"field {field!r} has the wrong type: {message}, got {json_type_name(value)}"
    else:
        reason, detail = RejectionReason.INVALID_VALUE, f"invalid value for field {field!r}: {message}{got}"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    return reason, detail


def _readable_event_id(doc: dict[str, Any]) -> str | None:
    value = doc.get("event_id")
    if not isinstance(value, str):
        return None
    try:
        return str(UUID(value))
    except ValueError:
        return None


def _refuse_non_json_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")
