"""Append simulated events to EventStoreDB, the system of record, quickly and idempotently.

Guarantees:
- Every append states the expected version of its stream (no stream yet, or the last position), which
  the simulator knows because it wrote everything before. A re-run of the same seed sends the same event
  ids at the same expected versions: EventStoreDB acknowledges them as already written (idempotent
  append) and nothing is duplicated. A server that answers "wrong expected version" instead is checked by
  reading the stream back: the same ids at those positions count as written; anything else raises
  ``StreamConflictError``.
- One append request carries at most ``MAX_APPEND_BYTES`` (under EventStoreDB's 1 MiB default); larger
  batches for one stream are split into consecutive appends with consecutive expected versions.
- Many streams' appends travel in one BatchAppend call (``streams_per_call`` of them, one atomic
  request each with its own expected version, answered one by one by correlation id), and several calls
  run concurrently on a small thread pool: one call carries a thousand appends instead of one
  (``bench/simulator_throughput.py``: about 4x the events/s of one stream per call, 1.2-1.3x of 128
  streams per call: each call costs both sides gRPC work in Python whatever it carries). Each
  stream's append stays atomic and version-checked on its own; one stream's conflict never fails
  another's append. A call the
  transport breaks is re-sent stream by stream through esdbclient's own append (idempotent, and with its
  reconnect and retry), so a dropped connection costs time, not events.
- ``submit`` returns at once so the caller can generate the next chunk meanwhile, and ``wait`` on the
  result before submitting appends that touch the same streams again, so per-stream order holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

import grpc
from esdbclient import EventStoreDBClient, NewEvent, StreamState
from esdbclient.exceptions import EventStoreDBClientException, NotFound, WrongCurrentVersion
from esdbclient.protos.Grpc import shared_pb2, streams_pb2
from esdbclient.streams import StreamsService
from google.protobuf import duration_pb2, empty_pb2

from cdr_platform.errors import PlatformError
from cdr_platform.simulator.builders import ProducedEvent
from cdr_platform.sources.relay_heartbeat import PRODUCER_CLOCK_STREAM, PRODUCER_CLOCK_TYPE, encode_clock_tick

MAX_APPEND_BYTES = 900 * 1024
EVENT_OVERHEAD_BYTES = 200  # id, type, content type and framing per event
STREAMS_PER_CALL = 1024


class StreamConflictError(PlatformError):
    """A stream already holds other events at the positions this run writes to."""


class AppendError(PlatformError):
    """EventStoreDB refused or failed an append; the message names the stream and the reason."""


@dataclass(frozen=True)
class StreamAppend:
    """Events for one stream, and how many events the stream holds before them."""

    stream: str
    expected_count: int
    events: Sequence[ProducedEvent]


class PendingAppends(Protocol):
    def wait(self) -> int: ...


class EventSink(Protocol):
    """Where the simulation sends events: EventStoreDB, or nowhere (generation benchmark, pure tests)."""

    def submit(self, appends: Sequence[StreamAppend]) -> PendingAppends: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class _Done:
    count: int

    def wait(self) -> int:
        return self.count


class DiscardingSink:
    """Accepts and forgets: measures generation alone."""

    def submit(self, appends: Sequence[StreamAppend]) -> PendingAppends:
        return _Done(sum(len(a.events) for a in appends))

    def close(self) -> None:
        return None


def split_for_append(
    events: Sequence[ProducedEvent], max_bytes: int = MAX_APPEND_BYTES
) -> list[list[ProducedEvent]]:
    """Consecutive slices whose encoded size stays under ``max_bytes`` (one event per slice at least)."""
    slices: list[list[ProducedEvent]] = []
    current: list[ProducedEvent] = []
    size = 0
    for event in events:
        grow = len(event.data) + EVENT_OVERHEAD_BYTES + 64
        if current and size + grow > max_bytes:
            slices.append(current)
            current, size = [], 0
        current.append(event)
        size += grow
    if current:
        slices.append(current)
    return slices


def _new_event(event: ProducedEvent) -> NewEvent:
    return NewEvent(
        type=event.event_type, data=event.data, metadata=_metadata(event), id=UUID(event.event_id)
    )


def _metadata(event: ProducedEvent) -> bytes:
    return json.dumps({"$correlationId": event.correlation_id, "member_id": event.member_id}).encode()


def _named(events: Sequence[tuple[str, str]], offset: int) -> str:
    """``<type> <id>`` of the event at ``offset``, or ``nothing`` past the end of the stream."""
    return f"{events[offset][1]} {events[offset][0]}" if offset < len(events) else "nothing"


def _expected_version(before: int) -> int | StreamState:
    return StreamState.NO_STREAM if before == 0 else before - 1


def _batch_append_request(
    correlation: int, stream: str, before: int, events: Sequence[ProducedEvent], timeout_s: float
) -> streams_pb2.BatchAppendReq:
    """One stream's whole append as one final BatchAppend request: atomic, at its expected version."""
    options = streams_pb2.BatchAppendReq.Options(
        stream_identifier=shared_pb2.StreamIdentifier(stream_name=stream.encode()),
        deadline=duration_pb2.Duration(seconds=int(timeout_s)),
    )
    if before == 0:
        options.no_stream.CopyFrom(empty_pb2.Empty())
    else:
        options.stream_position = before - 1
    return streams_pb2.BatchAppendReq(
        correlation_id=shared_pb2.UUID(string=str(UUID(int=correlation))),
        options=options,
        proposed_messages=[
            streams_pb2.BatchAppendReq.ProposedMessage(
                id=shared_pb2.UUID(string=event.event_id),
                metadata={"type": event.event_type, "content-type": "application/json"},
                custom_metadata=_metadata(event),
                data=event.data,
            )
            for event in events
        ],
        is_final=True,
    )


class _PendingFutures:
    def __init__(self, futures: list[Future[int]]) -> None:
        self.futures = futures

    def wait(self) -> int:
        return sum(future.result() for future in self.futures)


class ProducerClock:
    """Appends the producer's clock to EventStoreDB (``sources/relay_heartbeat``): a ``producer_clock``
    event whose time says everything released before it is already in $all. The simulation calls
    ``tick`` after each acknowledged chunk of live traffic (its ``on_appended``), so the relay's
    heartbeats, and the executives' as-of time, keep moving when traffic is sparse."""

    def __init__(self, client: EventStoreDBClient) -> None:
        self.client = client

    def tick(self, clock: datetime) -> None:
        event = NewEvent(type=PRODUCER_CLOCK_TYPE, data=encode_clock_tick(clock))
        self.client.append_to_stream(PRODUCER_CLOCK_STREAM, current_version=StreamState.ANY, events=[event])


class EventStoreProducer:
    """Appends ``StreamAppend`` batches to EventStoreDB from a pool of ``workers`` threads.

    Appends that fit one request are multiplexed, ``streams_per_call`` to a BatchAppend call; larger
    ones go stream by stream in consecutive requests. ``streams_per_call=1`` is the one-append-per-call
    baseline.
    """

    def __init__(
        self,
        client: EventStoreDBClient,
        workers: int = 8,
        timeout_s: float = 30.0,
        streams_per_call: int = STREAMS_PER_CALL,
    ) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.streams_per_call = streams_per_call
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="esdb-append")

    def submit(self, appends: Sequence[StreamAppend]) -> PendingAppends:
        single: list[StreamAppend] = []
        large: list[StreamAppend] = []
        for append in appends:
            (single if len(split_for_append(append.events)) == 1 else large).append(append)
        futures = [self._pool.submit(self.append_stream, append) for append in large]
        if self.streams_per_call <= 1:
            futures += [self._pool.submit(self.append_stream, append) for append in single]
        else:
            for start in range(0, len(single), self.streams_per_call):
                group = single[start : start + self.streams_per_call]
                futures.append(self._pool.submit(self.append_streams, group))
        return _PendingFutures(futures)

    def append_streams(self, appends: Sequence[StreamAppend]) -> int:
        """Append each stream's events (one request each) in one BatchAppend call; returns events sent.

        The server answers every request by its correlation id; a conflict is checked per stream as in
        ``append_stream``. If the call itself fails in transport, every stream is re-sent through
        ``append_stream`` (idempotent: what the failed call committed is acknowledged again).
        """
        requests = [
            _batch_append_request(index + 1, a.stream, a.expected_count, a.events, self.timeout_s)
            for index, a in enumerate(appends)
        ]
        try:
            responses = list(self._batch_append_call(requests))
        except grpc.RpcError:
            return sum(self.append_stream(append) for append in appends)
        answered: dict[int, streams_pb2.BatchAppendResp] = {
            UUID(response.correlation_id.string).int: response for response in responses
        }
        for index, append in enumerate(appends):
            response = answered.get(index + 1)
            if response is None:
                raise AppendError(
                    f"EventStoreDB did not answer the append of {len(append.events)} events to "
                    f"{append.stream} within a BatchAppend call of {len(appends)} streams"
                )
            outcome = StreamsService._convert_batch_append_resp(response, append.stream)
            if isinstance(outcome, WrongCurrentVersion):
                self._check_already_written(append.stream, append.expected_count, list(append.events))
            elif isinstance(outcome, EventStoreDBClientException):
                version = _expected_version(append.expected_count)
                raise AppendError(
                    f"appending {len(append.events)} events to {append.stream} at version {version} "
                    f"failed: {outcome!r}"
                )
        return sum(len(append.events) for append in appends)

    def _batch_append_call(
        self, requests: list[streams_pb2.BatchAppendReq]
    ) -> Iterator[streams_pb2.BatchAppendResp]:
        """One BatchAppend call on the client's own channel, with its credentials and leader metadata.

        esdbclient 1.x sends one stream per BatchAppend call and keeps its multiplexed variant
        unfinished, so this uses its connection's stub and response conversion directly.
        """
        streams = self.client._esdb.streams
        return streams._stub.BatchAppend(
            iter(requests),
            timeout=self.timeout_s * max(1.0, len(requests) / 128),  # the deadline grows with the call
            metadata=streams._metadata(self.client._call_metadata, requires_leader=True),
            credentials=self.client._call_credentials,
        )

    def append_stream(self, append: StreamAppend) -> int:
        """Append one stream's events (in several requests when large); returns how many were sent."""
        position = append.expected_count
        for chunk in split_for_append(append.events):
            self._append_chunk(append.stream, position, chunk)
            position += len(chunk)
        return len(append.events)

    def _append_chunk(self, stream: str, before: int, chunk: list[ProducedEvent]) -> None:
        version = _expected_version(before)
        try:
            self.client.append_to_stream(
                stream, current_version=version, events=[_new_event(e) for e in chunk], timeout=self.timeout_s
            )
        except WrongCurrentVersion:
            self._check_already_written(stream, before, chunk)
        except EventStoreDBClientException as exc:
            raise AppendError(
                f"appending {len(chunk)} events to {stream} at version {version} failed: {exc!r}"
            ) from exc

    def _check_already_written(self, stream: str, before: int, chunk: list[ProducedEvent]) -> None:
        try:
            stored = self.client.get_stream(
                stream, stream_position=before, limit=len(chunk), timeout=self.timeout_s
            )
        except NotFound:
            stored = ()
        held = [(str(event.id), event.type) for event in stored]
        wanted = [(event.event_id, event.event_type) for event in chunk]
        differing = [
            f"position {before + offset}: stored {_named(held, offset)}, "
            f"this run writes {_named(wanted, offset)}"
            for offset in range(len(chunk))
            if offset >= len(held) or held[offset][0] != wanted[offset][0]
        ]
        if differing:
            raise StreamConflictError(
                f"stream {stream} holds other events at positions {before}..{before + len(chunk) - 1} "
                f"than this run writes ({'; '.join(differing[:3])}{'; ...' if len(differing) > 3 else ''}): "
                "another seed, start or period, or an edited model wrote it; resume that run "
                "(simulate --mode live --resume), or use a fresh EventStoreDB or another seed"
            )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
