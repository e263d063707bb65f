"""Why a raw record could not become an event: the value ``parse_event`` returns instead of raising."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RejectionReason(StrEnum):
    """Closed set of rejection kinds, stable enough to group dead letters and alert on."""

    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    FUTURE_SCHEMA_VERSION = "future_schema_version"
    OVERSIZE = "oversize"
    PARSER_EXCEPTION = "parser_exception"
    """Never returned by ``parse_event``: landing's reason when parsing a record raised anyway (a parser
    bug; the detail names the exception). Fix the parser, then re-process the dead letter."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that is not a valid event, with the first problem found.

    ``detail`` names the field by its dotted path (``payload.call_duration_s``) and the fix-relevant facts;
    ``event_type`` and ``event_id`` are filled when the record got far enough to read them, so dead
    letters can still be traced to a producer and deduplicated. Every text field is valid Unicode (no
    lone surrogates, so it encodes as UTF-8 and fits a warehouse VARCHAR) and bounded in length.
    """

    reason: RejectionReason
    detail: str
    event_type: str | None = None
    event_id: str | None = None


_JSON_TYPE_NAMES: dict[type, str] = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def json_type_name(value: object) -> str:
    """The JSON name of a decoded value's type, for details such as "must be an integer, got string"."""
    return "null" if value is None else _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def shorten(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for quoting input in a detail.

    ``repr`` escapes lone surrogates and control characters, so the result is always storable text.
    An integer too long to print (past the interpreter's digit limit) is described by its size instead.
    """
    try:
        text = repr(value)
    except ValueError:
        digits = int(value.bit_length() * 0.30103) if isinstance(value, int) else 0
        text = f"<an integer of about {digits} digits>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def storable_text(text: str, limit: int = 100) -> str:
    """``text`` cut to ``limit`` characters, lone surrogates escaped (``\\ud800``): valid UTF-8 text."""
    text = text[:limit]
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")
