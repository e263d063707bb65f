"""Upcasters: turn documents written at an older schema version into the current version's shape.

Upcasters work on the decoded JSON document (a dict), before validation, the way event-sourcing systems
usually do, so old events never need old model classes. Each upcaster moves one type exactly one version
forward; ``upcast_document`` chains them to the current version. The registry is checked at import time:
every version from 1 below the current one must have an upcaster, so a version bump without its upcaster
fails loudly at startup, not on the first old event in production.

Changes so far:

- ``call_ended`` v1 -> v2: ``duration_ms`` (int milliseconds) became ``call_duration_s`` (float seconds,
  TS 32.298 callDuration) and ``cause_for_termination`` was added; v1 only recorded normal releases, so
  old events get ``"normal_release"``.
- ``usage_rated`` v1 -> v2: ``charge`` (decimal string in major units, e.g. ``"0.125"``) became exact integer
  ``charge_micros``, and ``quantity_unit`` was added; it is implied by ``usage_kind``.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Context, Decimal, DecimalException, Inexact, InvalidOperation, Overflow
from typing import Any

from cdr_platform.events.catalog import CURRENT_SCHEMA_VERSIONS
from cdr_platform.events.payloads import INT64_MAX, UNIT_OF_USAGE_KIND
from cdr_platform.events.rejection import RejectionReason, json_type_name, shorten

Document = dict[str, Any]
Upcaster = Callable[[Document], Document]


class UpcastError(ValueError):
    """An old document that cannot be converted; carries the rejection it should become."""

    def __init__(self, reason: RejectionReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _payload_of(doc: Document) -> Document:
    if "payload" not in doc:
        raise UpcastError(RejectionReason.MISSING_FIELD, "missing field 'payload'")
    payload = doc["payload"]
    if not isinstance(payload, dict):
        detail = f"field 'payload' must be an object, got {json_type_name(payload)}"
        raise UpcastError(RejectionReason.WRONG_TYPE, detail)
    return dict(payload)


def _pop_v1_field(payload: Document, name: str, json_type: str, event_type: str) -> Any:
    """Remove and return a field that only exists in v1, checking it has the JSON type v1 promised."""
    if name not in payload:
        raise UpcastError(RejectionReason.MISSING_FIELD, f"missing field 'payload.{name}' ({event_type} v1)")
    value = payload.pop(name)
    if json_type_name(value) != json_type:
        detail = f"field 'payload.{name}' ({event_type} v1) must be {json_type}, got {json_type_name(value)}"
        raise UpcastError(RejectionReason.WRONG_TYPE, detail)
    return value


def _refuse_v2_field(payload: Document, name: str, event_type: str) -> None:
    if name in payload:
        raise UpcastError(
            RejectionReason.INVALID_VALUE, f"unexpected field 'payload.{name}' in {event_type} v1 document"
        )


def call_ended_v1_to_v2(doc: Document) -> Document:
    """``duration_ms`` -> ``call_duration_s``; add ``cause_for_termination="normal_release"``.

    ``duration_ms`` must be a BIGINT like every other count, which also keeps the division finite.
    """
    payload = _payload_of(doc)
    duration_ms = _pop_v1_field(payload, "duration_ms", "integer", "call_ended")
    if duration_ms < 0:
        raise UpcastError(
            RejectionReason.INVALID_VALUE,
            f"field 'payload.duration_ms' must be >= 0, got {shorten(duration_ms)}",
        )
    if duration_ms > INT64_MAX:
        detail = f"field 'payload.duration_ms' must be <= {INT64_MAX}, got {shorten(duration_ms)}"
        raise UpcastError(RejectionReason.INVALID_VALUE, detail)
    for new_field in ("call_duration_s", "cause_for_termination"):
        _refuse_v2_field(payload, new_field, "call_ended")
    payload["call_duration_s"] = duration_ms / 1000
    payload["cause_for_termination"] = "normal_release"
    return {**doc, "schema_version": 2, "payload": payload}


def usage_rated_v1_to_v2(doc: Document) -> Document:
    """Decimal-string ``charge`` -> exact integer ``charge_micros`` (else rejected); add ``quantity_unit``.

    The conversion is exact or refused: a charge with more than 6 places is rejected, never rounded.
    """
    payload = _payload_of(doc)
    charge = _pop_v1_field(payload, "charge", "string", "usage_rated")
    for new_field in ("charge_micros", "quantity_unit"):
        _refuse_v2_field(payload, new_field, "usage_rated")
    try:
        micros = Decimal(charge).scaleb(
            6, context=Context(prec=40, traps=[InvalidOperation, Inexact, Overflow])
        )
    except DecimalException:  # not a number, or not exact in 40 digits: either way not a valid charge
        micros = Decimal("NaN")
    if not micros.is_finite() or micros.adjusted() > 18 or micros != micros.to_integral_value():
        raise UpcastError(
            RejectionReason.INVALID_VALUE,
            f"field 'payload.charge' must be a decimal below 1e12 with at most 6 places, got {charge[:40]!r}",
        )
    payload["charge_micros"] = int(micros)
    kind = payload.get("usage_kind")
    if isinstance(kind, str) and kind in UNIT_OF_USAGE_KIND:
        payload["quantity_unit"] = UNIT_OF_USAGE_KIND[kind]
    # otherwise validation reports the bad usage_kind against the field itself
    return {**doc, "schema_version": 2, "payload": payload}


UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("call_ended", 1): call_ended_v1_to_v2,
    ("usage_rated", 1): usage_rated_v1_to_v2,
}
"""(event_type, from_version) -> upcaster producing ``from_version + 1``."""


def _check_registry(upcasters: dict[tuple[str, int], Upcaster], current: dict[str, int]) -> None:
    for event_type, version in current.items():
        missing = [v for v in range(1, version) if (event_type, v) not in upcasters]
        if missing:
            raise RuntimeError(f"no upcaster for {event_type} from version(s) {missing}; add it to UPCASTERS")
    stale = [key for key in upcasters if key[0] not in current or key[1] >= current[key[0]]]
    if stale:
        raise RuntimeError(f"upcasters {stale} target no older version of a known event type; delete them")


_check_registry(UPCASTERS, CURRENT_SCHEMA_VERSIONS)


def upcast_document(doc: Document, event_type: str, version: int) -> Document:
    """Return ``doc`` (written at ``version``) converted to the current version of ``event_type``.

    The input is not mutated. Raises ``UpcastError`` when an old document lacks what the conversion needs.
    """
    current = CURRENT_SCHEMA_VERSIONS[event_type]
    while version < current:
        doc = UPCASTERS[(event_type, version)](doc)
        version += 1
    return doc
