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


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that is not a valid event, with the first problem found.

    ``detail`` names the field by its dotted path (``payload.call_duration_s``) and the fix-relevant facts;
    ``event_type`` and ``event_id`` are filled when the record got far enough to read them, so dead
    letters can still be traced to a producer and deduplicated.
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
