"""The envelope every event shares, and its flat warehouse row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, NamedTuple

from pydantic import UUID5, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from cdr_platform.events.payloads import Payload

KNOWN_PRODUCERS: frozenset[str] = frozenset({"msc-mediation", "smsc", "pgw", "ocs", "crm"})
"""Producers of the reference deployment; ``producer`` only has to be a lowercase slug, not one of these."""


# Pinned schema versions for concrete event classes. Not ``Literal[2]``: pydantic's literal matching
# accepts ``true`` for 1 and ``2.0`` for 2 even in strict mode; a strict int with equal bounds does not.
SchemaV1 = Annotated[int, Field(ge=1, le=1)]
SchemaV2 = Annotated[int, Field(ge=2, le=2)]


class EventRow(NamedTuple):
    """One event flattened for landing: scalar columns plus the payload as compact JSON."""

    event_id: str
    event_type: str
    schema_version: int
    occurred_at: datetime
    member_id: str
    correlation_id: str
    producer: str
    payload_json: str


class Event(BaseModel):
    """Base of every event type; concrete subclasses pin ``event_type``, ``schema_version`` and ``payload``.

    Guarantees once constructed through validation (``parse_event``, ``make_event``): ``event_id`` is a
    UUIDv5, ``occurred_at`` is timezone-aware and in UTC (naive input is rejected, never assumed UTC),
    ``schema_version`` is the current one for the type, and the model is immutable.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    event_id: UUID5
    event_type: str
    schema_version: int
    occurred_at: AwareDatetime
    member_id: str = Field(min_length=1, max_length=64)
    correlation_id: str = Field(min_length=1, max_length=128)
    producer: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    payload: Payload

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is UTC:
            return value
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{value.isoformat()} is outside the representable UTC range") from None

    def to_row(self) -> EventRow:
        """Flatten for a warehouse insert; ``payload_json`` uses the same field order as ``encode_event``."""
        return EventRow(
            str(self.event_id),
            self.event_type,
            self.schema_version,
            self.occurred_at,
            self.member_id,
            self.correlation_id,
            self.producer,
            self.payload.__pydantic_serializer__.to_json(self.payload).decode(),  # = model_dump_json()
        )
