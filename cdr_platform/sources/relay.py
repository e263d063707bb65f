"""Relay usage events from EventStoreDB's $all to Kinesis: checkpointed, restartable, at-least-once.

How it keeps its guarantees:
- It subscribes to $all from its checkpoint, filtered server-side to the usage event types (member
  lifecycle events stay in EventStoreDB), with checkpoints so long filtered-out stretches advance it.
- Partition key = member id. Events are grouped by the shard whose hash-key range holds
  md5(member id), packed into KPL aggregates (``framing``) per shard, and each put_records call carries
  at most one aggregate per shard; a failed aggregate is retried (backoff with full jitter) before the
  next one of its shard is sent. So per-member order holds, and a shard carries thousands of events/s
  in few records.
- The checkpoint (the last commit position handled) is written atomically (temp file, fsync, rename)
  only after Kinesis acknowledged every record up to it. A crash repeats at most the unacknowledged
  batch: events may be published twice, never lost. Consumers deduplicate on event_id.
- Reshards: the shard map is refreshed periodically, when put_records reports a shard the map does not
  know (the stream was resharded under us), and after a reshard the relay itself performs.
- Faults: a ``FaultInjector`` (the simulator's ``FaultConfig`` in tests and the demo; none in
  production) may rewrite each batch; what it injected is logged as JSON lines before the
  checkpoint moves past it.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from esdbclient import EventStoreDBClient
from esdbclient.events import CaughtUp, Checkpoint, RecordedEvent
from esdbclient.exceptions import EventStoreDBClientException

from cdr_platform.errors import PlatformError
from cdr_platform.events import USAGE_EVENT_TYPES
from cdr_platform.events.framing import DEFAULT_TARGET_BYTES, UserRecord
from cdr_platform.sources.eventstore_reader import type_filter
from cdr_platform.sources.kinesis_publisher import KinesisPublisher

log = logging.getLogger(__name__)


class RelayError(PlatformError):
    """The relay cannot continue; the message says what failed and what to check."""


@dataclass(frozen=True, slots=True)
class SourceEvent:
    event_id: str
    event_type: str
    member_id: str
    data: bytes
    commit_position: int


@dataclass(frozen=True)
class InjectedBatch:
    """What a fault injector made of a batch: the records to publish, in order, and its log lines."""

    records: list[UserRecord]
    fault_log: list[str]
    reshard_after: int | None = None
    """Reshard the stream after this many of ``records`` have been put (None: no reshard)."""
    reshard_to_shards: int | None = None


class FaultInjector(Protocol):
    """Deliberate faults between EventStoreDB and Kinesis (the simulator's); production has none."""

    def inject(self, batch: Sequence[SourceEvent], events_published: int, resharded: bool) -> InjectedBatch:
        """The batch as it should reach Kinesis, decided per event so that restarts decide alike."""
        ...

    def reshard_log_line(self, from_shards: int, to_shards: int, after_events: int) -> str:
        """The fault-log line for a reshard the relay performed at the injector's request."""
        ...


@dataclass(frozen=True)
class RelayConfig:
    stream_name: str
    checkpoint_path: Path
    fault_log_path: Path | None = None  # default: relay_faults.jsonl next to the checkpoint
    event_types: frozenset[str] = USAGE_EVENT_TYPES
    batch_events: int = 5000
    flush_interval_s: float = 0.5
    aggregate_bytes: int = DEFAULT_TARGET_BYTES
    shard_refresh_s: float = 30.0
    max_put_attempts: int = 10
    faults: FaultInjector | None = None

    @property
    def resolved_fault_log(self) -> Path:
        return self.fault_log_path or self.checkpoint_path.with_name("relay_faults.jsonl")


@dataclass(frozen=True)
class RelayState:
    """What the checkpoint file holds."""

    commit_position: int | None = None
    events_published: int = 0
    resharded: bool = False


def read_checkpoint(path: Path) -> RelayState:
    if not path.exists():
        return RelayState()
    try:
        return RelayState(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise RelayError(
            f"checkpoint {path} is unreadable ({exc}); fix or delete it to restart from $all"
        ) from exc


def write_checkpoint(path: Path, state: RelayState) -> None:
    """Replace the checkpoint atomically: a reader sees the old or the new one, never a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as handle:
        json.dump(state.__dict__, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass(frozen=True)
class RelayResult:
    events_read: int
    events_published: int  # user records put, duplicates and malformed records included
    records_put: int  # Kinesis records (aggregates)
    commit_position: int | None
    caught_up: bool
    faults: int


def partition_key_of(event: RecordedEvent) -> str:
    """The member id, from the metadata the producers write, else from the event body, else the stream."""
    for raw in (event.metadata, event.data):
        try:
            value = json.loads(raw).get("member_id") if raw else None
        except (ValueError, AttributeError):
            value = None
        if isinstance(value, str) and value:
            return value
    return event.stream_name


class _Subscription:
    """Reads the filtered $all subscription on a thread into a bounded queue (back-pressure)."""

    DONE = object()

    def __init__(self, client: EventStoreDBClient, after: int | None, event_types: Iterable[str]) -> None:
        self.queue: queue.Queue[object] = queue.Queue(maxsize=20_000)
        self.error: BaseException | None = None
        self._stopping = threading.Event()
        self._subscription = client.subscribe_to_all(
            commit_position=after,
            filter_include=type_filter(event_types),
            include_checkpoints=True,
            include_caught_up=True,
        )
        self._thread = threading.Thread(target=self._pump, name="relay-subscription", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            for item in self._subscription:
                while not self._stopping.is_set():
                    try:
                        self.queue.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if self._stopping.is_set():
                    return
        except EventStoreDBClientException as exc:
            if not self._stopping.is_set():
                self.error = exc
        finally:
            self.queue.put(self.DONE)

    def stop(self) -> None:
        self._stopping.set()
        self._subscription.stop()
        self._thread.join(timeout=10)


class Relay:
    """One relay process; ``run`` returns when caught up (if asked), when stopped, or after
    ``stop_after_events``."""

    def __init__(
        self,
        eventstore: EventStoreDBClient,
        kinesis: Any,
        config: RelayConfig,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.eventstore = eventstore
        self.config = config
        self.state = read_checkpoint(config.checkpoint_path)
        self.publisher = KinesisPublisher(
            kinesis,
            config.stream_name,
            config.aggregate_bytes,
            config.shard_refresh_s,
            config.max_put_attempts,
            sleep,
        )
        self._faults_logged = 0

    # -- main loop ---------------------------------------------------------------------------------------
    def run(
        self,
        until_caught_up: bool = False,
        stop: threading.Event | None = None,
        stop_after_events: int | None = None,
        on_batch: Callable[[RelayState], None] | None = None,
    ) -> RelayResult:
        """Relay until caught up / stopped. ``stop_after_events`` simulates a crash: the batch that
        crosses it is published but its checkpoint is not written, the worst case for duplicates."""
        stop = stop or threading.Event()
        subscription = _Subscription(self.eventstore, self.state.commit_position, self.config.event_types)
        batch: list[SourceEvent] = []
        position = self.state.commit_position
        events_read = published = 0
        caught_up = False
        last_flush = time.monotonic()
        try:
            while not stop.is_set():
                try:
                    item = subscription.queue.get(timeout=self.config.flush_interval_s / 2)
                except queue.Empty:
                    item = None
                if item is _Subscription.DONE:
                    if subscription.error is not None:
                        raise RelayError(f"the $all subscription failed: {subscription.error!r}")
                    break
                if isinstance(item, CaughtUp):
                    caught_up = True
                elif isinstance(item, Checkpoint):
                    position = max(position or 0, int(item.commit_position or 0))
                elif isinstance(item, RecordedEvent):
                    batch.append(self._source_event(item))
                    position = int(item.commit_position or 0)
                    events_read += 1
                full = len(batch) >= self.config.batch_events
                due = time.monotonic() - last_flush >= self.config.flush_interval_s
                if full or caught_up or (due and (batch or position != self.state.commit_position)):
                    published += self._publish(batch)
                    batch = []
                    last_flush = time.monotonic()
                    crossed = (
                        stop_after_events is not None
                        and self.state.events_published + published >= stop_after_events
                    )
                    if crossed:
                        break
                    self._commit(position, published)
                    published = 0
                    if on_batch is not None:
                        on_batch(self.state)
                    if caught_up and until_caught_up:
                        break
                    caught_up = False
        finally:
            subscription.stop()
        return RelayResult(
            events_read,
            self.state.events_published,
            self.publisher.records_put,
            self.state.commit_position,
            caught_up,
            self._faults_logged,
        )

    def _source_event(self, item: RecordedEvent) -> SourceEvent:
        return SourceEvent(
            str(item.id), item.type, partition_key_of(item), item.data, int(item.commit_position or 0)
        )

    def _commit(self, position: int | None, published: int) -> None:
        self.state = RelayState(position, self.state.events_published + published, self.state.resharded)
        write_checkpoint(self.config.checkpoint_path, self.state)

    # -- faults ------------------------------------------------------------------------------------------
    def _log_faults(self, lines: list[str]) -> None:
        if not lines:
            return
        path = self.config.resolved_fault_log
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.writelines(line + "\n" for line in lines)
            handle.flush()
            os.fsync(handle.fileno())
        self._faults_logged += len(lines)

    # -- publishing --------------------------------------------------------------------------------------
    def _publish(self, batch: list[SourceEvent]) -> int:
        """Publish a batch (with its injected faults, if any); returns how many user records were put."""
        faults = self.config.faults
        if faults is None:
            records = [UserRecord(e.member_id, e.data) for e in batch]
            self.publisher.put(records)
            return len(records)
        injected = faults.inject(batch, self.state.events_published, self.state.resharded)
        records, lines = list(injected.records), list(injected.fault_log)
        total = len(records)
        if injected.reshard_after is not None:
            split = injected.reshard_after
            self.publisher.put(records[:split])
            del records[:split]
            before, target = self.publisher.reshard(injected.reshard_to_shards)
            self.state = RelayState(self.state.commit_position, self.state.events_published, resharded=True)
            lines.append(faults.reshard_log_line(before, target, self.state.events_published + split))
            log.info("resharded %s from %d to %d shards", self.config.stream_name, before, target)
        self.publisher.put(records)
        self._log_faults(lines)
        return total
