"""Serialised protobuf messages for the hot read paths, built once and reused.

Reads stream pre-serialised bytes: each record's ``ReadResp`` is encoded on first read and cached on
the record, so a second reader (or a persistent subscription) pays nothing for encoding. Persistent
subscriptions reuse the same bytes: their ``ReadResp``/``ReadEvent``/``RecordedEvent`` use the same
field numbers as the streams ones, and protobuf merges a message concatenated to another, so adding
a ``retry_count`` is appending a tiny pre-built suffix.
"""

from __future__ import annotations

import uuid
from functools import lru_cache

from esdbclient.protos.Grpc import persistent_pb2, shared_pb2, streams_pb2

from cdr_platform.devstack.eventstore.errors import BadRequest
from cdr_platform.devstack.eventstore.storage import EventRecord

_ReadResp = streams_pb2.ReadResp
_ReadEvent = streams_pb2.ReadResp.ReadEvent
_RecordedEvent = streams_pb2.ReadResp.ReadEvent.RecordedEvent


def event_wire(record: EventRecord) -> bytes:
    """The record's serialised streams ``ReadResp`` (cached on the record)."""
    wire = record.wire
    if wire is None:
        recorded = _RecordedEvent(
            id=shared_pb2.UUID(string=record.event_id),
            stream_identifier=shared_pb2.StreamIdentifier(stream_name=record.stream.encode()),
            stream_revision=record.revision,
            prepare_position=record.position,
            commit_position=record.position,
            metadata={
                "type": record.event_type,
                "content-type": record.content_type,
                "created": str(record.created),
            },
            custom_metadata=record.custom_metadata,
            data=record.data,
        )
        wire = _ReadResp(
            event=_ReadEvent(event=recorded, commit_position=record.position)
        ).SerializeToString()
        record.wire = wire
    return wire


@lru_cache(maxsize=256)
def _retry_suffix(retry_count: int) -> bytes:
    return persistent_pb2.ReadResp(
        event=persistent_pb2.ReadResp.ReadEvent(retry_count=retry_count)
    ).SerializeToString()


def persistent_event_wire(record: EventRecord, retry_count: int) -> bytes:
    """The record as a serialised persistent-subscriptions ``ReadResp`` with its retry count."""
    return event_wire(record) + _retry_suffix(retry_count)


def confirmation_wire(subscription_id: str) -> bytes:
    """A catch-up subscription's confirmation, always the first message."""
    return _ReadResp(
        confirmation=_ReadResp.SubscriptionConfirmation(subscription_id=subscription_id)
    ).SerializeToString()


def checkpoint_wire(position: int) -> bytes:
    """A filtered $all subscription's checkpoint at a position."""
    return _ReadResp(
        checkpoint=_ReadResp.Checkpoint(commit_position=position, prepare_position=position)
    ).SerializeToString()


CAUGHT_UP_WIRE = _ReadResp(caught_up=_ReadResp.CaughtUp()).SerializeToString()


def stream_not_found_wire(stream: str) -> bytes:
    """The in-band answer to reading a stream that does not exist."""
    return _ReadResp(
        stream_not_found=_ReadResp.StreamNotFound(
            stream_identifier=shared_pb2.StreamIdentifier(stream_name=stream.encode())
        )
    ).SerializeToString()


def uuid_string(message: shared_pb2.UUID, what: str) -> str:
    """Canonical string form of a protobuf UUID (string or structured); BadRequest if malformed."""
    kind = message.WhichOneof("value")
    try:
        if kind == "string":
            return str(uuid.UUID(message.string))
        if kind == "structured":
            most = message.structured.most_significant_bits & (2**64 - 1)
            least = message.structured.least_significant_bits & (2**64 - 1)
            return str(uuid.UUID(int=(most << 64) | least))
    except ValueError:
        raise BadRequest(f"'{message.string}' is not a valid UUID for {what}") from None
    raise BadRequest(f"{what} is missing its UUID")


def stream_name(identifier: shared_pb2.StreamIdentifier) -> str:
    """Decoded stream name; BadRequest when it is empty or not UTF-8."""
    try:
        name = identifier.stream_name.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the stream name is not valid UTF-8") from None
    if not name:
        raise BadRequest("the stream name is empty")
    return name
