"""Every event type at its current schema version, and the tables derived from them.

``CURRENT_SCHEMA_VERSIONS`` and the category sets are computed from the classes below, so adding a type or
bumping a version is a one-place change (plus an upcaster, which ``upcasting`` checks at import).
``event_type`` and ``schema_version`` have no defaults: a document must state both, so a producer that
forgets its version is rejected instead of being silently read as the current one.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, TypeAdapter

from cdr_platform.events import payloads as p
from cdr_platform.events.envelope import Event, SchemaV1, SchemaV2


class CallAttempted(Event):
    event_type: Literal["call_attempted"]
    schema_version: SchemaV1
    payload: p.CallAttemptedPayload


class CallAnswered(Event):
    event_type: Literal["call_answered"]
    schema_version: SchemaV1
    payload: p.CallAnsweredPayload


class CallEnded(Event):
    event_type: Literal["call_ended"]
    schema_version: SchemaV2
    payload: p.CallEndedPayload


class CallDropped(Event):
    event_type: Literal["call_dropped"]
    schema_version: SchemaV1
    payload: p.CallDroppedPayload


class CallFailed(Event):
    event_type: Literal["call_failed"]
    schema_version: SchemaV1
    payload: p.CallFailedPayload


class SmsSubmitted(Event):
    event_type: Literal["sms_submitted"]
    schema_version: SchemaV1
    payload: p.SmsSubmittedPayload


class SmsDelivered(Event):
    event_type: Literal["sms_delivered"]
    schema_version: SchemaV1
    payload: p.SmsDeliveredPayload


class SmsFailed(Event):
    event_type: Literal["sms_failed"]
    schema_version: SchemaV1
    payload: p.SmsFailedPayload


class DataSessionEnded(Event):
    event_type: Literal["data_session_ended"]
    schema_version: SchemaV1
    payload: p.DataSessionEndedPayload


class UsageRated(Event):
    event_type: Literal["usage_rated"]
    schema_version: SchemaV2
    payload: p.UsageRatedPayload


class TopupCompleted(Event):
    event_type: Literal["topup_completed"]
    schema_version: SchemaV1
    payload: p.TopupCompletedPayload


class UsageRefused(Event):
    event_type: Literal["usage_refused"]
    schema_version: SchemaV1
    payload: p.UsageRefusedPayload


class PlanFeeCharged(Event):
    event_type: Literal["plan_fee_charged"]
    schema_version: SchemaV1
    payload: p.PlanFeeChargedPayload


class MemberActivated(Event):
    event_type: Literal["member_activated"]
    schema_version: SchemaV1
    payload: p.MemberActivatedPayload


class PlanChanged(Event):
    event_type: Literal["plan_changed"]
    schema_version: SchemaV1
    payload: p.PlanChangedPayload


class PortOutRequested(Event):
    event_type: Literal["port_out_requested"]
    schema_version: SchemaV1
    payload: p.PortOutRequestedPayload


class MemberDeactivated(Event):
    event_type: Literal["member_deactivated"]
    schema_version: SchemaV1
    payload: p.MemberDeactivatedPayload


AnyEvent = Annotated[
    CallAttempted
    | CallAnswered
    | CallEnded
    | CallDropped
    | CallFailed
    | SmsSubmitted
    | SmsDelivered
    | SmsFailed
    | DataSessionEnded
    | UsageRated
    | TopupCompleted
    | UsageRefused
    | PlanFeeCharged
    | MemberActivated
    | PlanChanged
    | PortOutRequested
    | MemberDeactivated,
    Field(discriminator="event_type"),
]
"""Tagged union of all current event classes, for pydantic fields and ``TypeAdapter``."""

ANY_EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def _event_type_of(cls: type[Event]) -> str:
    (event_type,) = get_args(cls.model_fields["event_type"].annotation)
    return str(event_type)


def _schema_version_of(cls: type[Event]) -> int:
    bounds = {type(m).__name__: m for m in cls.model_fields["schema_version"].metadata}
    version = int(bounds["Ge"].ge)
    if bounds["Le"].le != version:
        raise TypeError(f"{cls.__name__}.schema_version must pin one version (SchemaV<n>)")
    return version


EVENT_CLASSES: dict[str, type[Event]] = {_event_type_of(cls): cls for cls in get_args(get_args(AnyEvent)[0])}
"""event_type -> the class of its current schema version."""

PAYLOAD_MODELS: dict[str, type[p.Payload]] = {
    event_type: cls.model_fields["payload"].annotation  # type: ignore[misc]
    for event_type, cls in EVENT_CLASSES.items()
}
"""event_type -> payload model of its current schema version."""

CURRENT_SCHEMA_VERSIONS: dict[str, int] = {
    event_type: _schema_version_of(cls) for event_type, cls in EVENT_CLASSES.items()
}
"""event_type -> current schema version; anything older is upcast on parse, anything newer is rejected."""

MEMBER_EVENT_TYPES: frozenset[str] = frozenset(
    {"member_activated", "plan_changed", "port_out_requested", "member_deactivated"}
)
"""Member lifecycle events, read straight from EventStoreDB."""

USAGE_EVENT_TYPES: frozenset[str] = frozenset(EVENT_CLASSES) - MEMBER_EVENT_TYPES
"""Calls, SMS, data, rating, refusals, plan fees and top-ups: the events that travel through Kinesis."""

OPENING_EVENT_TYPES: frozenset[str] = frozenset({"call_attempted", "sms_submitted", "topup_completed"})
"""Events stamped when their transaction starts (or instantaneous ones), so their time is the producer's
clock: what the executives' landed watermark follows (dbt macro ``exec_source_watermarks`` lists the
same types). Completions (call ends, data sessions, rating) can lie far past it."""
