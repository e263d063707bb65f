"""The ``event_store.client.streams.Streams`` service: Read, Append, BatchAppend, Delete, Tombstone.

Errors follow the real server, because esdbclient maps status codes and texts to its exceptions:
a version mismatch comes back in band (``wrong_expected_version`` on Append, a Status on
BatchAppend); reads of a missing stream answer ``stream_not_found``; a tombstoned stream answers
FAILED_PRECONDITION "Event stream '<name>' is deleted."; Delete/Tombstone mismatches are
FAILED_PRECONDITION "... WrongExpectedVersion ... Actual version: N" (-1 when there is no stream).

``Read`` yields pre-serialised bytes (see ``wire``), which is why the service is registered with
``streams_method_handlers`` (the generated ``add_StreamsServicer_to_server`` with Read's serializer
left out) rather than the generated helper itself.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NoReturn

import grpc
from esdbclient.protos.Grpc import code_pb2, shared_pb2, status_pb2, streams_pb2, streams_pb2_grpc
from google.protobuf import any_pb2, empty_pb2

from cdr_platform.devstack.eventstore.errors import (
    BadRequest,
    Expected,
    ExpectedKind,
    MaximumAppendSizeExceeded,
    StreamDeleted,
    WrongExpectedVersion,
)
from cdr_platform.devstack.eventstore.filters import EventFilter, filter_from_options
from cdr_platform.devstack.eventstore.storage import MAX_APPEND_SIZE, AppendResult, EventLog, ProposedEvent
from cdr_platform.devstack.eventstore.wire import (
    CAUGHT_UP_WIRE,
    checkpoint_wire,
    confirmation_wire,
    event_wire,
    stream_name,
    stream_not_found_wire,
    uuid_string,
)

log = logging.getLogger(__name__)

_Options = streams_pb2.ReadReq.Options
_LIVE_WAIT_S = 1.0
_REQUIRED_METADATA = ("type", "content-type")

ProposedMessage = streams_pb2.AppendReq.ProposedMessage | streams_pb2.BatchAppendReq.ProposedMessage
ExpectedOptions = (
    streams_pb2.AppendReq.Options
    | streams_pb2.BatchAppendReq.Options
    | streams_pb2.DeleteReq.Options
    | streams_pb2.TombstoneReq.Options
)


def expected_from_options(options: ExpectedOptions, oneof: str) -> Expected:
    """The expected version carried by an Append/BatchAppend/Delete/Tombstone options message."""
    which = options.WhichOneof(oneof)
    if which in ("revision", "stream_position"):
        return Expected(ExpectedKind.REVISION, getattr(options, which))
    if which == "no_stream":
        return Expected(ExpectedKind.NO_STREAM)
    if which == "any":
        return Expected(ExpectedKind.ANY)
    if which == "stream_exists":
        return Expected(ExpectedKind.EXISTS)
    raise BadRequest("the request has no expected stream revision")


def proposed_event(message: ProposedMessage) -> ProposedEvent:
    """Validate one proposed message (UUID, required metadata) into a ProposedEvent."""
    for key in _REQUIRED_METADATA:
        if key not in message.metadata:
            raise BadRequest(f"Required Metadata Property '{key}' is missing")
    return ProposedEvent(
        event_id=uuid_string(message.id, "the event id"),
        event_type=message.metadata["type"],
        content_type=message.metadata["content-type"],
        data=message.data,
        custom_metadata=message.custom_metadata,
    )


def _abort_for(context: grpc.ServicerContext, error: Exception) -> NoReturn:
    """Abort the call with the status the real server uses for this error."""
    if isinstance(error, StreamDeleted):
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
    if isinstance(error, MaximumAppendSizeExceeded):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
    if isinstance(error, BadRequest):
        log.warning("bad request from %s: %s", context.peer(), error)
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
    raise error


@dataclass(slots=True)
class _PendingBatch:
    """A BatchAppend transaction being assembled from requests sharing one correlation id."""

    stream: str
    expected: Expected
    options: streams_pb2.BatchAppendReq.Options
    events: list[ProposedEvent] = field(default_factory=list)
    size: int = 0


class StreamsService(streams_pb2_grpc.StreamsServicer):
    """Streams API over the shared EventLog."""

    def __init__(self, event_log: EventLog) -> None:
        self._log = event_log

    # -- Read ----------------------------------------------------------------------------------

    def Read(self, request: streams_pb2.ReadReq, context: grpc.ServicerContext) -> Iterator[bytes]:
        """Every Read flavour: stream or $all, forwards or backwards, count or subscription."""
        try:
            options = request.options
            which = options.WhichOneof("stream_option")
            count_option = options.WhichOneof("count_option")
            if which is None:
                raise BadRequest("ReadReq.options needs 'stream' or 'all'")
            if count_option is None:
                raise BadRequest("ReadReq.options needs 'count' or 'subscription'")
            if options.uuid_option.WhichOneof("content") == "structured":
                context.abort(
                    grpc.StatusCode.UNIMPLEMENTED,
                    "structured UUIDs are not implemented by the dev EventStoreDB server; ask for strings",
                )
            backwards = options.read_direction == _Options.Backwards
            event_filter = None
            if options.WhichOneof("filter_option") == "filter":
                if which == "stream":
                    raise BadRequest(
                        "The combination of (stream, filter) is invalid: filters apply to $all only"
                    )
                event_filter = filter_from_options(options.filter)
            if count_option == "subscription" and backwards:
                raise BadRequest("The combination of (subscription, backwards) is invalid.")
            if which == "stream":
                name = stream_name(options.stream.stream_identifier)
                if count_option == "subscription":
                    yield from self._subscribe_stream(name, options.stream, context)
                else:
                    yield from self._read_stream(name, options.stream, backwards, options.count)
            elif count_option == "subscription":
                yield from self._subscribe_all(options.all, event_filter, context)
            else:
                yield from self._read_all(options.all, backwards, options.count, event_filter)
        except (BadRequest, StreamDeleted) as error:
            _abort_for(context, error)

    def _read_stream(
        self, name: str, stream_options: _Options.StreamOptions, backwards: bool, count: int
    ) -> Iterator[bytes]:
        state = self._log.check_readable(name)
        if state is None:
            yield stream_not_found_wire(name)
            return
        records = state.records
        first = state.first_visible_revision()
        last = len(records) - 1
        revision_option = stream_options.WhichOneof("revision_option")
        if backwards:
            start = stream_options.revision if revision_option == "revision" else last
            if revision_option == "start":
                start = first
            indexes = range(min(start, last), first - 1, -1)
        else:
            start = stream_options.revision if revision_option == "revision" else first
            if revision_option == "end":
                start = last + 1
            indexes = range(max(start, first), last + 1)
        for sent, index in enumerate(indexes):
            if sent >= count:
                return
            yield event_wire(records[index])

    def _read_all(
        self, all_options: _Options.AllOptions, backwards: bool, count: int, event_filter: EventFilter | None
    ) -> Iterator[bytes]:
        records = self._log.records
        which = all_options.WhichOneof("all_option")
        if backwards:
            if which == "position":
                start = self._log.index_at_or_after(all_options.position.commit_position) - 1
            else:
                start = len(records) - 1 if which == "end" else -1
            indexes = range(start, -1, -1)
        else:
            if which == "position":
                start = self._log.index_at_or_after(all_options.position.commit_position)
            else:
                start = len(records) if which == "end" else 0
            indexes = range(start, len(records))
        sent = 0
        for index in indexes:
            if sent >= count:
                return
            record = records[index]
            if event_filter is not None and not event_filter.matches(record):
                continue
            sent += 1
            yield record.wire or event_wire(record)

    def _subscribe_stream(
        self, name: str, stream_options: _Options.StreamOptions, context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        self._log.check_readable(name)
        revision_option = stream_options.WhichOneof("revision_option")
        state = self._log.stream(name)
        if revision_option == "revision":
            next_revision = stream_options.revision + 1
        elif revision_option == "end":
            next_revision = len(state.records) if state is not None else 0
        else:
            next_revision = state.first_visible_revision() if state is not None else 0
        context.add_callback(self._log.wake_all)
        log.info("stream subscription to %r from %s", name, context.peer())
        yield confirmation_wire(str(uuid.uuid4()))
        caught_up = False
        while context.is_active():
            seen = len(self._log.records)
            state = self._log.stream(name)
            if state is not None:
                if state.tombstone is not None:
                    raise StreamDeleted(name)
                records = state.records
                while next_revision < len(records):
                    yield records[next_revision].wire or event_wire(records[next_revision])
                    next_revision += 1
            if not caught_up:
                caught_up = True
                yield CAUGHT_UP_WIRE
            self._log.wait_for_records(seen, _LIVE_WAIT_S)

    def _subscribe_all(
        self,
        all_options: _Options.AllOptions,
        event_filter: EventFilter | None,
        context: grpc.ServicerContext,
    ) -> Iterator[bytes]:
        records = self._log.records
        which = all_options.WhichOneof("all_option")
        if which == "position":
            index = self._log.index_after(all_options.position.commit_position)
        else:
            index = len(records) if which == "end" else 0
        context.add_callback(self._log.wake_all)
        log.info("$all subscription from %s (filter %s)", context.peer(), event_filter)
        yield confirmation_wire(str(uuid.uuid4()))
        interval = event_filter.checkpoint_interval if event_filter is not None else 0
        considered = 0
        caught_up = False
        while context.is_active():
            end = len(records)
            while index < end:
                record = records[index]
                index += 1
                if event_filter is None:
                    yield record.wire or event_wire(record)
                    continue
                if event_filter.matches(record):
                    yield record.wire or event_wire(record)
                considered += 1
                if considered >= interval:
                    considered = 0
                    yield checkpoint_wire(record.position)
            if not caught_up:
                caught_up = True
                if event_filter is not None and index > 0:
                    considered = 0
                    yield checkpoint_wire(records[index - 1].position)
                yield CAUGHT_UP_WIRE
            self._log.wait_for_records(end, _LIVE_WAIT_S)

    # -- Append --------------------------------------------------------------------------------

    def Append(
        self, request_iterator: Iterator[streams_pb2.AppendReq], context: grpc.ServicerContext
    ) -> streams_pb2.AppendResp:
        """Client-streaming append: the options first, then one proposed message per request."""
        try:
            first = next(request_iterator, None)
            if first is None or first.WhichOneof("content") != "options":
                raise BadRequest("the first AppendReq must carry the options")
            name = stream_name(first.options.stream_identifier)
            expected = expected_from_options(first.options, "expected_stream_revision")
            events: list[ProposedEvent] = []
            size = 0
            for request in request_iterator:
                if request.WhichOneof("content") != "proposed_message":
                    raise BadRequest("AppendReq after the options must carry a proposed_message")
                event = proposed_event(request.proposed_message)
                size += len(event.data) + len(event.custom_metadata)
                if size > MAX_APPEND_SIZE:
                    raise MaximumAppendSizeExceeded(size, MAX_APPEND_SIZE)
                events.append(event)
            result = self._log.append(name, expected, events)
        except WrongExpectedVersion as error:
            return streams_pb2.AppendResp(wrong_expected_version=_append_wrong_version(error))
        except (BadRequest, StreamDeleted, MaximumAppendSizeExceeded) as error:
            _abort_for(context, error)
        return streams_pb2.AppendResp(success=_append_success(result))

    def BatchAppend(
        self, request_iterator: Iterator[streams_pb2.BatchAppendReq], context: grpc.ServicerContext
    ) -> Iterator[streams_pb2.BatchAppendResp]:
        """Bidirectional append: requests are grouped by correlation id until ``is_final``."""
        pending: dict[str, _PendingBatch] = {}
        try:
            for request in request_iterator:
                correlation = uuid_string(request.correlation_id, "the correlation id")
                batch = pending.get(correlation)
                if batch is None:
                    if not request.HasField("options"):
                        raise BadRequest(f"the first BatchAppendReq of {correlation} must carry the options")
                    batch = pending[correlation] = _PendingBatch(
                        stream=stream_name(request.options.stream_identifier),
                        expected=expected_from_options(request.options, "expected_stream_position"),
                        options=request.options,
                    )
                for message in request.proposed_messages:
                    event = proposed_event(message)
                    batch.size += len(event.data) + len(event.custom_metadata)
                    batch.events.append(event)
                if request.is_final:
                    del pending[correlation]
                    yield self._commit_batch(request.correlation_id, batch)
        except BadRequest as error:
            _abort_for(context, error)

    def _commit_batch(
        self, correlation_id: shared_pb2.UUID, batch: _PendingBatch
    ) -> streams_pb2.BatchAppendResp:
        response = streams_pb2.BatchAppendResp(
            correlation_id=correlation_id,
            stream_identifier=batch.options.stream_identifier,
        )
        _echo_expected(response, batch.expected)
        try:
            if batch.size > MAX_APPEND_SIZE:
                raise MaximumAppendSizeExceeded(batch.size, MAX_APPEND_SIZE)
            result = self._log.append(batch.stream, batch.expected, batch.events)
        except WrongExpectedVersion as error:
            details = shared_pb2.WrongExpectedVersion()
            if error.actual is None:
                details.current_no_stream.CopyFrom(empty_pb2.Empty())
            else:
                details.current_stream_revision = error.actual
            _set_expected(details, error.expected, "expected_stream_position")
            response.error.CopyFrom(_status(code_pb2.FAILED_PRECONDITION, str(error), details))
        except StreamDeleted as error:
            deleted = shared_pb2.StreamDeleted(stream_identifier=batch.options.stream_identifier)
            response.error.CopyFrom(_status(code_pb2.FAILED_PRECONDITION, str(error), deleted))
        except MaximumAppendSizeExceeded as error:
            exceeded = shared_pb2.MaximumAppendSizeExceeded(maxAppendSize=error.limit)
            response.error.CopyFrom(_status(code_pb2.INVALID_ARGUMENT, str(error), exceeded))
        else:
            success = response.success
            if result.revision is None:
                success.no_stream.CopyFrom(empty_pb2.Empty())
            else:
                success.current_revision = result.revision
            if result.position is None:
                success.no_position.CopyFrom(empty_pb2.Empty())
            else:
                success.position.commit_position = result.position
                success.position.prepare_position = result.position
        return response

    # -- Delete / Tombstone --------------------------------------------------------------------

    def Delete(self, request: streams_pb2.DeleteReq, context: grpc.ServicerContext) -> streams_pb2.DeleteResp:
        """Soft delete: the stream reads as not found until it is appended to again."""
        try:
            name = stream_name(request.options.stream_identifier)
            expected = expected_from_options(request.options, "expected_stream_revision")
            position = self._log.delete(name, expected)
        except WrongExpectedVersion as error:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"Delete failed due to {error}")
        except (BadRequest, StreamDeleted) as error:
            _abort_for(context, error)
        return streams_pb2.DeleteResp(
            position=streams_pb2.DeleteResp.Position(commit_position=position, prepare_position=position)
        )

    def Tombstone(
        self, request: streams_pb2.TombstoneReq, context: grpc.ServicerContext
    ) -> streams_pb2.TombstoneResp:
        """Hard delete: the stream can never be read, written or deleted again."""
        try:
            name = stream_name(request.options.stream_identifier)
            expected = expected_from_options(request.options, "expected_stream_revision")
            position = self._log.tombstone(name, expected)
        except WrongExpectedVersion as error:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"Tombstone failed due to {error}")
        except (BadRequest, StreamDeleted) as error:
            _abort_for(context, error)
        return streams_pb2.TombstoneResp(
            position=streams_pb2.TombstoneResp.Position(commit_position=position, prepare_position=position)
        )


def _append_success(result: AppendResult) -> streams_pb2.AppendResp.Success:
    success = streams_pb2.AppendResp.Success()
    if result.revision is None:
        success.no_stream.CopyFrom(shared_pb2.Empty())
    else:
        success.current_revision = result.revision
    if result.position is None:
        success.no_position.CopyFrom(shared_pb2.Empty())
    else:
        success.position.commit_position = result.position
        success.position.prepare_position = result.position
    return success


def _append_wrong_version(error: WrongExpectedVersion) -> streams_pb2.AppendResp.WrongExpectedVersion:
    """Both the current and the 20.6.0 field sets, as the real server fills them."""
    wrong = streams_pb2.AppendResp.WrongExpectedVersion()
    if error.actual is None:
        wrong.current_no_stream.CopyFrom(shared_pb2.Empty())
        wrong.no_stream_20_6_0.CopyFrom(shared_pb2.Empty())
    else:
        wrong.current_revision = error.actual
        wrong.current_revision_20_6_0 = error.actual
    kind = error.expected.kind
    if kind is ExpectedKind.REVISION:
        wrong.expected_revision = error.expected.revision
        wrong.expected_revision_20_6_0 = error.expected.revision
    elif kind is ExpectedKind.ANY:
        wrong.expected_any.CopyFrom(shared_pb2.Empty())
        wrong.any_20_6_0.CopyFrom(shared_pb2.Empty())
    elif kind is ExpectedKind.EXISTS:
        wrong.expected_stream_exists.CopyFrom(shared_pb2.Empty())
        wrong.stream_exists_20_6_0.CopyFrom(shared_pb2.Empty())
    else:
        wrong.expected_no_stream.CopyFrom(shared_pb2.Empty())
    return wrong


def _set_expected(message: shared_pb2.WrongExpectedVersion, expected: Expected, revision_field: str) -> None:
    kind = expected.kind
    if kind is ExpectedKind.REVISION:
        setattr(message, revision_field, expected.revision)
    elif kind is ExpectedKind.ANY:
        message.expected_any.CopyFrom(empty_pb2.Empty())
    elif kind is ExpectedKind.EXISTS:
        message.expected_stream_exists.CopyFrom(empty_pb2.Empty())
    else:
        message.expected_no_stream.CopyFrom(empty_pb2.Empty())


def _echo_expected(response: streams_pb2.BatchAppendResp, expected: Expected) -> None:
    kind = expected.kind
    if kind is ExpectedKind.REVISION:
        response.stream_position = expected.revision
    elif kind is ExpectedKind.ANY:
        response.any.CopyFrom(empty_pb2.Empty())
    elif kind is ExpectedKind.EXISTS:
        response.stream_exists.CopyFrom(empty_pb2.Empty())
    else:
        response.no_stream.CopyFrom(empty_pb2.Empty())


def _status(code: int, message: str, details: object) -> status_pb2.Status:
    packed = any_pb2.Any()
    packed.Pack(details)  # type: ignore[arg-type]
    return status_pb2.Status(code=code, message=message, details=packed)  # type: ignore[arg-type]


def streams_method_handlers(service: StreamsService) -> grpc.GenericRpcHandler:
    """The generated registration, except that Read's responses are already-serialised bytes."""
    messages = streams_pb2
    handlers = {
        "Read": grpc.unary_stream_rpc_method_handler(
            service.Read, request_deserializer=messages.ReadReq.FromString, response_serializer=None
        ),
        "Append": grpc.stream_unary_rpc_method_handler(
            service.Append,
            request_deserializer=messages.AppendReq.FromString,
            response_serializer=messages.AppendResp.SerializeToString,
        ),
        "Delete": grpc.unary_unary_rpc_method_handler(
            service.Delete,
            request_deserializer=messages.DeleteReq.FromString,
            response_serializer=messages.DeleteResp.SerializeToString,
        ),
        "Tombstone": grpc.unary_unary_rpc_method_handler(
            service.Tombstone,
            request_deserializer=messages.TombstoneReq.FromString,
            response_serializer=messages.TombstoneResp.SerializeToString,
        ),
        "BatchAppend": grpc.stream_stream_rpc_method_handler(
            service.BatchAppend,
            request_deserializer=messages.BatchAppendReq.FromString,
            response_serializer=messages.BatchAppendResp.SerializeToString,
        ),
    }
    return grpc.method_handlers_generic_handler("event_store.client.streams.Streams", handlers)
