"""Persistent subscription groups: competing consumers with acks, retries, parking and checkpoints.

Semantics follow EventStoreDB where esdbclient can observe them:

- A group reads one stream, or $all through an optional filter, from its start (inclusive), and
  resumes after its checkpoint once it has one. The checkpoint is the last event such that it and
  every event before it were acked, skipped or parked; it is saved with the parked events after
  each ack batch, so a restart of a SQLite-mode server redelivers only unresolved events.
- Each consumer has a buffer (its ``buffer_size``); an event is in flight until acked or nacked.
  ``nack`` retry/unknown redelivers with ``retry_count + 1``, park parks, skip resolves, stop
  redelivers the event elsewhere and ends that consumer's call. An event not acked within
  ``message_timeout`` is redelivered the same way; one that would exceed ``max_retry_count``
  is parked instead. ``replay_parked`` redelivers parked events with ``retry_count`` 0.
- Strategies: DispatchToSingle (fill the first consumer's buffer, then the next), RoundRobin
  (rotate), Pinned/PinnedByCorrelation (by stream name hash; the correlation id is not tracked).
"""

from __future__ import annotations

import json
import math
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

from esdbclient.protos.Grpc import persistent_pb2

from cdr_platform.devstack.eventstore.errors import EventStoreError
from cdr_platform.devstack.eventstore.filters import EventFilter
from cdr_platform.devstack.eventstore.storage import EventLog, EventRecord, Journal
from cdr_platform.devstack.eventstore.wire import persistent_event_wire

ALL_STREAM = "$all"
_IDLE_WAIT_S = 0.5


class GroupExists(EventStoreError):
    """Create was asked for a group that already exists."""


class GroupNotFound(EventStoreError):
    """The named group does not exist on that stream."""


class MaximumSubscribersReached(EventStoreError):
    """The group already has ``max_subscriber_count`` consumers."""


@dataclass(slots=True)
class GroupSettings:
    """The settings esdbclient sends on Create/Update and reads back through GetInfo."""

    resolve_links: bool = False
    extra_statistics: bool = False
    max_retry_count: int = 10
    min_checkpoint_count: int = 10
    max_checkpoint_count: int = 1000
    max_subscriber_count: int = 5
    live_buffer_size: int = 500
    read_batch_size: int = 200
    history_buffer_size: int = 500
    message_timeout_ms: int = 30_000
    checkpoint_after_ms: int = 2_000
    consumer_strategy: str = "DispatchToSingle"


@dataclass(slots=True)
class GroupDefinition:
    """What a group reads and how; ``start_value`` is the first revision/position to deliver."""

    stream: str
    group: str
    start_kind: str
    start_value: int
    settings: GroupSettings
    event_filter: EventFilter | None = None

    @property
    def is_all(self) -> bool:
        """True for a subscription to $all."""
        return self.stream == ALL_STREAM

    @property
    def start_from(self) -> str:
        """The start as GetInfo reports it (esdbclient parses it back when updating)."""
        value = {"start": 0, "end": -1}.get(self.start_kind, self.start_value)
        return f"C:{value}/P:{value}" if self.is_all else str(value)

    def to_json(self) -> str:
        """Serialised form stored by the journal."""
        return json.dumps(
            {
                "stream": self.stream,
                "group": self.group,
                "start_kind": self.start_kind,
                "start_value": self.start_value,
                "settings": asdict(self.settings),
                "filter": self.event_filter.to_json() if self.event_filter is not None else None,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> GroupDefinition:
        """Inverse of to_json."""
        data = json.loads(text)
        return cls(
            stream=data["stream"],
            group=data["group"],
            start_kind=data["start_kind"],
            start_value=data["start_value"],
            settings=GroupSettings(**data["settings"]),
            event_filter=EventFilter.from_json(data["filter"]) if data["filter"] else None,
        )


@dataclass(eq=False, slots=True)
class Consumer:
    """One connected Read call of a group."""

    peer: str
    connection_name: str
    buffer_size: int
    outbox: deque[bytes] = field(default_factory=deque)
    in_flight: int = 0
    total_items: int = 0
    closed: bool = False


@dataclass(slots=True)
class _InFlight:
    record: EventRecord
    retry_count: int
    consumer: Consumer
    deadline: float
    replay: bool


class PersistentGroup:
    """Runtime state of one group; every method is thread-safe (one condition guards it all)."""

    def __init__(
        self, definition: GroupDefinition, event_log: EventLog, journal: Journal, state: str | None
    ) -> None:
        self.definition = definition
        self._log = event_log
        self._journal = journal
        self._cond = threading.Condition()
        self._consumers: list[Consumer] = []
        self._round_robin = 0
        self._retry: deque[tuple[EventRecord, int, bool]] = deque()
        self._in_flight: dict[str, _InFlight] = {}
        self._parked: list[EventRecord] = []
        self._unresolved: deque[tuple[int, str]] = deque()
        self._resolved: set[str] = set()
        self.checkpoint: int | None = None
        self._last_known: int | None = None
        self._total_items = 0
        self._closed = False
        if state:
            saved = json.loads(state)
            self.checkpoint = saved.get("checkpoint")
            records = event_log.records
            for position in saved.get("parked", []):
                index = event_log.index_at_or_after(position)
                if index < len(records) and records[index].position == position:
                    self._parked.append(records[index])
        self._cursor = self._initial_cursor()
        event_log.add_listener(self._on_append)

    # -- consumers -----------------------------------------------------------------------------

    def connect(self, peer: str, connection_name: str, buffer_size: int) -> Consumer:
        """Register a consumer, or raise MaximumSubscribersReached."""
        with self._cond:
            limit = self.definition.settings.max_subscriber_count
            if self._closed:
                raise GroupNotFound(self.definition.group)
            if limit > 0 and len(self._consumers) >= limit:
                raise MaximumSubscribersReached(self.definition.group)
            consumer = Consumer(peer, connection_name, max(1, buffer_size))
            self._consumers.append(consumer)
            self._cond.notify_all()
            return consumer

    def disconnect(self, consumer: Consumer) -> None:
        """Forget a consumer; its in-flight events go back to the front of the retry queue."""
        with self._cond:
            consumer.closed = True
            if consumer in self._consumers:
                self._consumers.remove(consumer)
            returned = [f for f in self._in_flight.values() if f.consumer is consumer]
            for flight in reversed(returned):
                del self._in_flight[flight.record.event_id]
                self._retry.appendleft((flight.record, flight.retry_count, flight.replay))
            self._cond.notify_all()

    def deliveries(self, consumer: Consumer, is_active: Callable[[], bool]) -> Iterator[bytes]:
        """Serialised ReadResps for this consumer until it closes, the call ends or the group goes."""
        while True:
            with self._cond:
                while True:
                    if consumer.closed or self._closed or not is_active():
                        return
                    self._expire(time.monotonic())
                    if self._dispatch():
                        self._cond.notify_all()
                    if consumer.outbox:
                        batch = list(consumer.outbox)
                        consumer.outbox.clear()
                        break
                    self._cond.wait(self._wait_time())
            yield from batch

    def wake(self) -> None:
        """Make waiting consumers re-check their call (used when a call ends)."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """End every consumer's call (the group was deleted or updated) and stop listening."""
        with self._cond:
            self._closed = True
            for consumer in self._consumers:
                consumer.closed = True
            self._cond.notify_all()
        self._log.remove_listener(self._on_append)

    # -- acks ----------------------------------------------------------------------------------

    def ack(self, event_ids: list[str]) -> None:
        """Resolve acked events (unknown ids, e.g. already timed out, are ignored)."""
        with self._cond:
            for event_id in event_ids:
                flight = self._take_in_flight(event_id)
                if flight is not None:
                    self._resolve(flight.record, flight.replay)
            self._after_acks()

    def nack(self, consumer: Consumer, event_ids: list[str], action: int) -> None:
        """Apply a nack action (see the module docstring) to each event."""
        nack = persistent_pb2.ReadReq.Nack
        with self._cond:
            for event_id in event_ids:
                flight = self._take_in_flight(event_id)
                if flight is None:
                    continue
                if action == nack.Park:
                    self._park(flight.record, flight.replay)
                elif action == nack.Skip:
                    self._resolve(flight.record, flight.replay)
                elif action == nack.Stop:
                    self._retry.appendleft((flight.record, flight.retry_count, flight.replay))
                    consumer.closed = True
                else:
                    self._retry_or_park(flight.record, flight.retry_count + 1, flight.replay)
            self._after_acks()

    def replay_parked(self) -> None:
        """Redeliver every parked event, with retry_count 0."""
        with self._cond:
            for record in self._parked:
                self._retry.append((record, 0, True))
            self._parked.clear()
            self._save_state()
            self._cond.notify_all()

    def update(self, definition: GroupDefinition) -> None:
        """Apply new settings; a new start only matters while the group has no checkpoint."""
        with self._cond:
            old = self.definition
            if definition.start_kind == "end" and old.start_kind == "end":
                definition.start_value = old.start_value
            definition.event_filter = old.event_filter
            self.definition = definition
            if self.checkpoint is None and (old.start_kind, old.start_value) != (
                definition.start_kind,
                definition.start_value,
            ):
                self._cursor = self._initial_cursor()
                self._unresolved.clear()
                self._resolved.clear()
            self._cond.notify_all()

    # -- info ----------------------------------------------------------------------------------

    def info(self) -> persistent_pb2.SubscriptionInfo:
        """GetInfo/List view of the group."""
        with self._cond:
            d = self.definition
            s = d.settings
            connections = [
                persistent_pb2.SubscriptionInfo.ConnectionInfo(
                    **{"from": c.peer},
                    total_items=c.total_items,
                    available_slots=max(0, c.buffer_size - c.in_flight),
                    in_flight_messages=c.in_flight,
                    connection_name=c.connection_name,
                )
                for c in self._consumers
            ]
            return persistent_pb2.SubscriptionInfo(
                event_source=d.stream,
                group_name=d.group,
                status="Live",
                connections=connections,
                total_items=self._total_items,
                last_checkpointed_event_position=self._format_key(self.checkpoint),
                last_known_event_position=self._format_key(self._last_known),
                resolve_link_tos=s.resolve_links,
                start_from=d.start_from,
                message_timeout_milliseconds=s.message_timeout_ms,
                extra_statistics=s.extra_statistics,
                max_retry_count=s.max_retry_count,
                live_buffer_size=s.live_buffer_size,
                buffer_size=s.history_buffer_size,
                read_batch_size=s.read_batch_size,
                check_point_after_milliseconds=s.checkpoint_after_ms,
                min_check_point_count=s.min_checkpoint_count,
                max_check_point_count=s.max_checkpoint_count,
                read_buffer_count=0,
                live_buffer_count=0,
                retry_buffer_count=len(self._retry),
                total_in_flight_messages=len(self._in_flight),
                outstanding_messages_count=len(self._in_flight),
                named_consumer_strategy=s.consumer_strategy,
                max_subscriber_count=s.max_subscriber_count,
                parked_message_count=len(self._parked),
            )

    # -- internals (all called with the condition held) ----------------------------------------

    def _key(self, record: EventRecord) -> int:
        return record.position if self.definition.is_all else record.revision

    def _format_key(self, key: int | None) -> str:
        if key is None:
            return ""
        return f"C:{key}/P:{key}" if self.definition.is_all else str(key)

    def _initial_cursor(self) -> int:
        d = self.definition
        if d.is_all:
            if self.checkpoint is not None:
                return self._log.index_after(self.checkpoint)
            return self._log.index_at_or_after(d.start_value)
        return self.checkpoint + 1 if self.checkpoint is not None else d.start_value

    def _on_append(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _wait_time(self) -> float:
        if not self._in_flight:
            return _IDLE_WAIT_S
        earliest = min(f.deadline for f in self._in_flight.values())
        return max(0.005, min(_IDLE_WAIT_S, earliest - time.monotonic()))

    def _next_from_log(self) -> EventRecord | None:
        d = self.definition
        if d.is_all:
            records = self._log.records
            while self._cursor < len(records):
                record = records[self._cursor]
                if d.event_filter is None or d.event_filter.matches(record):
                    return record
                self._cursor += 1
            return None
        state = self._log.stream(d.stream)
        if state is not None and self._cursor < len(state.records):
            return state.records[self._cursor]
        return None

    def _choose(self, record: EventRecord) -> Consumer | None:
        consumers = [c for c in self._consumers if not c.closed]
        if not consumers:
            return None
        strategy = self.definition.settings.consumer_strategy
        if strategy in ("Pinned", "PinnedByCorrelation"):
            pinned = consumers[zlib.crc32(record.stream.encode()) % len(consumers)]
            return pinned if pinned.in_flight < pinned.buffer_size else None
        if strategy == "RoundRobin":
            for step in range(len(consumers)):
                candidate = consumers[(self._round_robin + step) % len(consumers)]
                if candidate.in_flight < candidate.buffer_size:
                    self._round_robin = (self._round_robin + step + 1) % len(consumers)
                    return candidate
            return None
        return next((c for c in consumers if c.in_flight < c.buffer_size), None)

    def _dispatch(self) -> bool:
        """Hand out retries first, then new events, while some consumer has room."""
        dispatched = False
        timeout_ms = self.definition.settings.message_timeout_ms
        while True:
            from_retry = bool(self._retry)
            if from_retry:
                record, retry_count, replay = self._retry[0]
            else:
                next_record = self._next_from_log()
                if next_record is None:
                    return dispatched
                record, retry_count, replay = next_record, 0, False
            consumer = self._choose(record)
            if consumer is None:
                return dispatched
            if from_retry:
                self._retry.popleft()
            else:
                self._cursor += 1
                self._unresolved.append((self._key(record), record.event_id))
                self._last_known = self._key(record)
            deadline = time.monotonic() + timeout_ms / 1000 if timeout_ms > 0 else math.inf
            self._in_flight[record.event_id] = _InFlight(record, retry_count, consumer, deadline, replay)
            consumer.outbox.append(persistent_event_wire(record, retry_count))
            consumer.in_flight += 1
            consumer.total_items += 1
            self._total_items += 1
            dispatched = True

    def _expire(self, now: float) -> None:
        expired = [f for f in self._in_flight.values() if f.deadline <= now]
        for flight in expired:
            self._take_in_flight(flight.record.event_id)
            self._retry_or_park(flight.record, flight.retry_count + 1, flight.replay)
        if expired:
            self._after_acks()

    def _take_in_flight(self, event_id: str) -> _InFlight | None:
        flight = self._in_flight.pop(event_id, None)
        if flight is not None:
            flight.consumer.in_flight -= 1
        return flight

    def _retry_or_park(self, record: EventRecord, retry_count: int, replay: bool) -> None:
        if retry_count > self.definition.settings.max_retry_count:
            self._park(record, replay)
        else:
            self._retry.append((record, retry_count, replay))

    def _park(self, record: EventRecord, replay: bool) -> None:
        self._parked.append(record)
        self._resolve(record, replay)

    def _resolve(self, record: EventRecord, replay: bool) -> None:
        if not replay:
            self._resolved.add(record.event_id)
        while self._unresolved and self._unresolved[0][1] in self._resolved:
            key, event_id = self._unresolved.popleft()
            self._resolved.discard(event_id)
            self.checkpoint = key

    def _after_acks(self) -> None:
        self._save_state()
        self._cond.notify_all()

    def _save_state(self) -> None:
        state = {"checkpoint": self.checkpoint, "parked": [r.position for r in self._parked]}
        self._journal.save_group_state(self.definition.stream, self.definition.group, json.dumps(state))


class PersistentSubscriptions:
    """All groups of the server, loaded from the journal at start."""

    def __init__(self, event_log: EventLog) -> None:
        self._log = event_log
        self._journal = event_log.journal
        self._lock = threading.Lock()
        self._groups: dict[tuple[str, str], PersistentGroup] = {}
        for stream, group, definition, state in self._journal.load_groups():
            self._groups[(stream, group)] = PersistentGroup(
                GroupDefinition.from_json(definition), event_log, self._journal, state
            )

    def create(self, definition: GroupDefinition) -> None:
        """Create a group (GroupExists if it is already there) and persist its definition."""
        key = (definition.stream, definition.group)
        with self._lock:
            if key in self._groups:
                raise GroupExists(definition.group)
            self._journal.save_group(definition.stream, definition.group, definition.to_json())
            self._groups[key] = PersistentGroup(definition, self._log, self._journal, None)

    def get(self, stream: str, group: str) -> PersistentGroup:
        """The group, or GroupNotFound."""
        with self._lock:
            found = self._groups.get((stream, group))
        if found is None:
            raise GroupNotFound(group)
        return found

    def update(self, definition: GroupDefinition) -> None:
        """Apply new settings to an existing group and persist them."""
        group = self.get(definition.stream, definition.group)
        group.update(definition)
        self._journal.save_group(definition.stream, definition.group, group.definition.to_json())

    def delete(self, stream: str, group: str) -> None:
        """Remove a group, ending its consumers' calls."""
        with self._lock:
            found = self._groups.pop((stream, group), None)
            if found is None:
                raise GroupNotFound(group)
            self._journal.delete_group(stream, group)
        found.close()

    def list(self, stream: str | None) -> list[PersistentGroup]:
        """Every group, or those of one stream ("$all" included)."""
        with self._lock:
            groups = list(self._groups.values())
        return [g for g in groups if stream is None or g.definition.stream == stream]

    def close(self) -> None:
        """End every consumer's call (server shutdown)."""
        for group in self.list(None):
            group.close()
