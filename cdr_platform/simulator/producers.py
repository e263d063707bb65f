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
- Appends to different streams run concurrently on a small thread pool (each is a network round trip);
  ``submit`` returns at once so the caller can generate the next chunk meanwhile, and ``wait`` on the
  result before submitting appends that touch the same streams again, so per-stream order holds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from esdbclient import EventStoreDBClient, NewEvent, StreamState
from esdbclient.exceptions import EventStoreDBClientException, NotFound, WrongCurrentVersion

from cdr_platform.errors import PlatformError
from cdr_platform.simulator.builders import ProducedEvent

MAX_APPEND_BYTES = 900 * 1024
EVENT_OVERHEAD_BYTES = 200  # id, type, content type and framing per event


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
    metadata = json.dumps({"$correlationId": event.correlation_id, "member_id": event.member_id}).encode()
    return NewEvent(type=event.event_type, data=event.data, metadata=metadata, id=UUID(event.event_id))


class _PendingFutures:
    def __init__(self, futures: list[Future[int]]) -> None:
        self.futures = futures

    def wait(self) -> int:
        return sum(future.result() for future in self.futures)


class EventStoreProducer:
    """Appends ``StreamAppend`` batches to EventStoreDB from a pool of ``workers`` threads."""

    def __init__(self, client: EventStoreDBClient, workers: int = 8, timeout_s: float = 30.0) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="esdb-append")

    def submit(self, appends: Sequence[StreamAppend]) -> PendingAppends:
        return _PendingFutures([self._pool.submit(self.append_stream, append) for append in appends])

    def append_stream(self, append: StreamAppend) -> int:
        """Append one stream's events (in several requests when large); returns how many were sent."""
        position = append.expected_count
        for chunk in split_for_append(append.events):
            self._append_chunk(append.stream, position, chunk)
            position += len(chunk)
        return len(append.events)

    def _append_chunk(self, stream: str, before: int, chunk: list[ProducedEvent]) -> None:
        version: int | StreamState = StreamState.NO_STREAM if before == 0 else before - 1
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
        stored_ids = [str(event.id) for event in stored]
        wanted = [event.event_id for event in chunk]
        if stored_ids != wanted:
            raise StreamConflictError(
                f"stream {stream} holds other events at positions {before}..{before + len(chunk) - 1} "
                f"than this run writes (first stored {stored_ids[:1]}, wanted {wanted[:1]}): another "
                "seed or an edited model wrote it; use a fresh EventStoreDB or another seed"
            )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
