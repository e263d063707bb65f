"""The ``event_store.client.persistent_subscriptions.PersistentSubscriptions`` gRPC service.

Status codes and texts are the real server's, which esdbclient maps to its exceptions:
ALREADY_EXISTS on Create of an existing group, NOT_FOUND "Subscription group ... does not exist."
for unknown groups, FAILED_PRECONDITION "Maximum subscriptions reached ..." when a group is full.
``Read`` yields pre-serialised bytes, hence ``persistent_method_handlers``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import NoReturn

import grpc
from esdbclient.protos.Grpc import persistent_pb2, persistent_pb2_grpc, shared_pb2

from cdr_platform.devstack.eventstore.errors import BadRequest
from cdr_platform.devstack.eventstore.filters import filter_from_options
from cdr_platform.devstack.eventstore.persistent import (
    ALL_STREAM,
    Consumer,
    GroupDefinition,
    GroupExists,
    GroupNotFound,
    GroupSettings,
    MaximumSubscribersReached,
    PersistentGroup,
    PersistentSubscriptions,
)
from cdr_platform.devstack.eventstore.storage import EventLog
from cdr_platform.devstack.eventstore.wire import stream_name, uuid_string

log = logging.getLogger(__name__)

_STRATEGY_NAMES = {0: "DispatchToSingle", 1: "RoundRobin", 2: "Pinned"}
_KNOWN_STRATEGIES = {"DispatchToSingle", "RoundRobin", "Pinned", "PinnedByCorrelation"}
_TICKS_PER_MS = 10_000

Settings = persistent_pb2.CreateReq.Settings | persistent_pb2.UpdateReq.Settings
StreamOptions = persistent_pb2.CreateReq.StreamOptions | persistent_pb2.UpdateReq.StreamOptions
AllOptions = persistent_pb2.CreateReq.AllOptions | persistent_pb2.UpdateReq.AllOptions


def _settings(settings: Settings) -> GroupSettings:
    strategy = getattr(settings, "consumer_strategy", "") or _STRATEGY_NAMES.get(
        settings.named_consumer_strategy, ""
    )
    if strategy not in _KNOWN_STRATEGIES:
        raise BadRequest(f"unknown consumer strategy {strategy!r}")
    if settings.WhichOneof("message_timeout") == "message_timeout_ticks":
        timeout_ms = settings.message_timeout_ticks // _TICKS_PER_MS
    else:
        timeout_ms = settings.message_timeout_ms
    if settings.WhichOneof("checkpoint_after") == "checkpoint_after_ticks":
        checkpoint_ms = settings.checkpoint_after_ticks // _TICKS_PER_MS
    else:
        checkpoint_ms = settings.checkpoint_after_ms
    return GroupSettings(
        resolve_links=settings.resolve_links,
        extra_statistics=settings.extra_statistics,
        max_retry_count=settings.max_retry_count,
        min_checkpoint_count=settings.min_checkpoint_count,
        max_checkpoint_count=settings.max_checkpoint_count,
        max_subscriber_count=settings.max_subscriber_count,
        live_buffer_size=settings.live_buffer_size,
        read_batch_size=settings.read_batch_size,
        history_buffer_size=settings.history_buffer_size,
        message_timeout_ms=timeout_ms,
        checkpoint_after_ms=checkpoint_ms,
        consumer_strategy=strategy,
    )


class PersistentSubscriptionsService(persistent_pb2_grpc.PersistentSubscriptionsServicer):
    """Persistent subscriptions over the shared EventLog."""

    def __init__(self, event_log: EventLog, groups: PersistentSubscriptions) -> None:
        self._log = event_log
        self._groups = groups

    # -- definitions ---------------------------------------------------------------------------

    def _definition(
        self, options: persistent_pb2.CreateReq.Options | persistent_pb2.UpdateReq.Options
    ) -> GroupDefinition:
        if not options.group_name:
            raise BadRequest("the group name is empty")
        settings = _settings(options.settings)
        which = options.WhichOneof("stream_option")
        if which == "all":
            all_options: AllOptions = options.all
            position_kind = all_options.WhichOneof("all_option") or "start"
            value = {"start": 0, "end": self._log.next_position}.get(
                position_kind, all_options.position.commit_position
            )
            event_filter = None
            if isinstance(all_options, persistent_pb2.CreateReq.AllOptions) and all_options.HasField(
                "filter"
            ):
                event_filter = filter_from_options(all_options.filter)
            return GroupDefinition(
                ALL_STREAM, options.group_name, position_kind, value, settings, event_filter
            )
        if which == "stream":
            stream_options: StreamOptions = options.stream
            name = stream_name(stream_options.stream_identifier)
        else:  # pre-21.10 clients put the stream in the options and start in the settings
            name = stream_name(options.stream_identifier)
            stream_options = None  # type: ignore[assignment]
        revision_kind = stream_options.WhichOneof("revision_option") if stream_options is not None else None
        if revision_kind == "end":
            state = self._log.stream(name)
            value = len(state.records) if state is not None else 0
        elif revision_kind == "revision":
            value = stream_options.revision
        else:
            revision_kind, value = "start", 0
        return GroupDefinition(name, options.group_name, revision_kind, value, settings)

    def Create(
        self, request: persistent_pb2.CreateReq, context: grpc.ServicerContext
    ) -> persistent_pb2.CreateResp:
        """Create a group; ALREADY_EXISTS if there is one with that name on that stream."""
        try:
            definition = self._definition(request.options)
            self._groups.create(definition)
        except GroupExists:
            context.abort(
                grpc.StatusCode.ALREADY_EXISTS,
                f"Subscription group {request.options.group_name} on stream {definition.stream} exists.",
            )
        except BadRequest as error:
            _abort_bad_request(context, error)
        log.info("created persistent subscription %s::%s", definition.stream, definition.group)
        return persistent_pb2.CreateResp()

    def Update(
        self, request: persistent_pb2.UpdateReq, context: grpc.ServicerContext
    ) -> persistent_pb2.UpdateResp:
        """Replace a group's settings (and start, while it has no checkpoint)."""
        try:
            definition = self._definition(request.options)
            self._groups.update(definition)
        except GroupNotFound:
            _abort_not_found(context, definition.stream, request.options.group_name)
        except BadRequest as error:
            _abort_bad_request(context, error)
        return persistent_pb2.UpdateResp()

    def Delete(
        self, request: persistent_pb2.DeleteReq, context: grpc.ServicerContext
    ) -> persistent_pb2.DeleteResp:
        """Delete a group, ending its consumers' calls."""
        stream = self._target(request.options, context)
        try:
            self._groups.delete(stream, request.options.group_name)
        except GroupNotFound:
            _abort_not_found(context, stream, request.options.group_name)
        return persistent_pb2.DeleteResp()

    def GetInfo(
        self, request: persistent_pb2.GetInfoReq, context: grpc.ServicerContext
    ) -> persistent_pb2.GetInfoResp:
        """One group's settings and live counters."""
        stream = self._target(request.options, context)
        try:
            group = self._groups.get(stream, request.options.group_name)
        except GroupNotFound:
            _abort_not_found(context, stream, request.options.group_name)
        return persistent_pb2.GetInfoResp(subscription_info=group.info())

    def List(self, request: persistent_pb2.ListReq, context: grpc.ServicerContext) -> persistent_pb2.ListResp:
        """Every group, or the groups of one stream (or of $all)."""
        options = request.options
        stream = None
        if options.WhichOneof("list_option") == "list_for_stream":
            option = options.list_for_stream
            if option.WhichOneof("stream_option") == "all":
                stream = ALL_STREAM
            else:
                try:
                    stream = stream_name(option.stream)
                except BadRequest as error:
                    _abort_bad_request(context, error)
        return persistent_pb2.ListResp(subscriptions=[g.info() for g in self._groups.list(stream)])

    def ReplayParked(
        self, request: persistent_pb2.ReplayParkedReq, context: grpc.ServicerContext
    ) -> persistent_pb2.ReplayParkedResp:
        """Redeliver the group's parked events."""
        stream = self._target(request.options, context)
        try:
            self._groups.get(stream, request.options.group_name).replay_parked()
        except GroupNotFound:
            _abort_not_found(context, stream, request.options.group_name)
        return persistent_pb2.ReplayParkedResp()

    def RestartSubsystem(self, request: shared_pb2.Empty, context: grpc.ServicerContext) -> shared_pb2.Empty:
        """Not meaningful for a single in-process node."""
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "RestartSubsystem is not implemented by the dev EventStoreDB server: there is nothing to restart",
        )

    # -- Read ----------------------------------------------------------------------------------

    def Read(
        self, request_iterator: Iterator[persistent_pb2.ReadReq], context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        """Bidirectional: options first, then acks/nacks in; confirmation then events out."""
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("content") != "options":
            _abort_bad_request(context, BadRequest("the first ReadReq must carry the options"))
        options = first.options
        stream = self._target(options, context)
        try:
            group = self._groups.get(stream, options.group_name)
            metadata = dict(context.invocation_metadata())
            consumer = group.connect(
                context.peer(), str(metadata.get("connection-name", "")), options.buffer_size
            )
        except GroupNotFound:
            _abort_not_found(context, stream, options.group_name)
        except MaximumSubscribersReached:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Maximum subscriptions reached for subscription group {options.group_name}"
                f" on stream {stream}.",
            )
        log.info("consumer %s joined %s::%s", context.peer(), stream, options.group_name)
        context.add_callback(group.wake)
        reader = threading.Thread(
            target=_pump_acks, args=(request_iterator, group, consumer), name="psub-acks", daemon=True
        )
        reader.start()
        try:
            yield persistent_pb2.ReadResp(
                subscription_confirmation=persistent_pb2.ReadResp.SubscriptionConfirmation(
                    subscription_id=f"{stream}::{options.group_name}"
                )
            ).SerializeToString()
            yield from group.deliveries(consumer, context.is_active)
        finally:
            group.disconnect(consumer)
            log.info("consumer %s left %s::%s", context.peer(), stream, options.group_name)

    def _target(
        self,
        options: persistent_pb2.ReadReq.Options
        | persistent_pb2.DeleteReq.Options
        | persistent_pb2.GetInfoReq.Options
        | persistent_pb2.ReplayParkedReq.Options,
        context: grpc.ServicerContext,
    ) -> str:
        """The stream a request names: "$all" or a stream name (INVALID_ARGUMENT if neither)."""
        which = options.WhichOneof("stream_option")
        if which == "all":
            return ALL_STREAM
        try:
            if which != "stream_identifier":
                raise BadRequest("the request names neither a stream nor $all")
            return stream_name(options.stream_identifier)
        except BadRequest as error:
            _abort_bad_request(context, error)


def _pump_acks(
    requests: Iterator[persistent_pb2.ReadReq], group: PersistentGroup, consumer: Consumer
) -> None:
    """Apply the consumer's acks and nacks until it half-closes or the call ends."""
    try:
        for request in requests:
            which = request.WhichOneof("content")
            if which == "ack":
                group.ack([uuid_string(i, "an acked event id") for i in request.ack.ids])
            elif which == "nack":
                ids = [uuid_string(i, "a nacked event id") for i in request.nack.ids]
                group.nack(consumer, ids, request.nack.action)
    except BadRequest as error:
        log.warning("closing consumer %s: %s", consumer.peer, error)
    except grpc.RpcError:
        pass  # the call ended (client cancelled); the handler thread cleans up
    finally:
        consumer.closed = True
        group.wake()


def _abort_not_found(context: grpc.ServicerContext, stream: str, group: str) -> NoReturn:
    context.abort(grpc.StatusCode.NOT_FOUND, f"Subscription group {group} on stream {stream} does not exist.")
    raise AssertionError("unreachable")


def _abort_bad_request(context: grpc.ServicerContext, error: BadRequest) -> NoReturn:
    log.warning("bad persistent subscription request: %s", error)
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
    raise AssertionError("unreachable")


def persistent_method_handlers(service: PersistentSubscriptionsService) -> grpc.GenericRpcHandler:
    """The generated registration, except that Read's responses are already-serialised bytes."""
    m = persistent_pb2

    def unary(method: object, request: type, response: type) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            method,  # type: ignore[arg-type]
            request_deserializer=request.FromString,  # type: ignore[attr-defined]
            response_serializer=response.SerializeToString,  # type: ignore[attr-defined]
        )

    handlers = {
        "Create": unary(service.Create, m.CreateReq, m.CreateResp),
        "Update": unary(service.Update, m.UpdateReq, m.UpdateResp),
        "Delete": unary(service.Delete, m.DeleteReq, m.DeleteResp),
        "GetInfo": unary(service.GetInfo, m.GetInfoReq, m.GetInfoResp),
        "ReplayParked": unary(service.ReplayParked, m.ReplayParkedReq, m.ReplayParkedResp),
        "List": unary(service.List, m.ListReq, m.ListResp),
        "RestartSubsystem": unary(service.RestartSubsystem, shared_pb2.Empty, shared_pb2.Empty),
        "Read": grpc.stream_stream_rpc_method_handler(
            service.Read, request_deserializer=m.ReadReq.FromString, response_serializer=None
        ),
    }
    return grpc.method_handlers_generic_handler(
        "event_store.client.persistent_subscriptions.PersistentSubscriptions", handlers
    )
