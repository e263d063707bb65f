"""Relay usage events from EventStoreDB's $all to Kinesis: checkpointed, restartable, at-least-once.

How it keeps its guarantees:
- It subscribes to $all from its checkpoint, filtered server-side to the usage event types and the
  producers' ``producer_clock`` events (member lifecycle events stay in EventStoreDB), with checkpoints
  so long filtered-out stretches advance it.
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
- Heartbeats (``relay_heartbeat``): at most every ``heartbeat_interval_s``, once Kinesis has acknowledged
  a batch that moved the producer clock (``ClockReading``: a producer's clock tick, read but never
  published, or an opening event time two members reach), a record carrying that time goes on every
  open shard, so a consumer knows a quiet shard is complete that far (the executives' as-of time). A
  heartbeat Kinesis refuses is logged and sent again at the next interval.
- Faults: a ``FaultInjector`` (the simulator's ``FaultConfig`` in tests and the demo; none in
  production) may rewrite each batch; what it injected is logged as JSON lines before the
  checkpoint moves past it.

What survives what:
- Endpoint errors are retried forever: Kinesis unreachable, timing out or closing the connection,
  answering ResourceNotFound, or throttling beyond the publisher's own retries; EventStoreDB
  unavailable, past a deadline, or ending the subscription (a server shutting down ends it cleanly).
  Each retry logs one warning line with the reason, waits a capped exponential backoff with full jitter
  (``retry_base_s`` doubling up to ``retry_cap_s``, back to the base once a checkpoint is written
  again), then subscribes anew from the last checkpoint with a fresh shard map. Events read but not yet
  acknowledged are read again: an outage adds duplicates, never gaps. ResourceNotFound is retried
  because a restarting Kinesis endpoint or a re-created stream looks just like a wrong stream name; the
  log line names the stream, so a typo shows up there.
- Configuration errors end the relay with ``RelayConfigError``, since no retry can fix them: an
  unreadable checkpoint file; credentials missing or rejected (Kinesis AccessDenied, UnrecognizedClient,
  InvalidSignature and the like; EventStoreDB access denied or unauthenticated); a TLS certificate that
  does not match EventStoreDB's; a request Kinesis calls invalid (ValidationException,
  InvalidArgumentException). Anything else is a bug and propagates unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import grpc
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)
from esdbclient import EventStoreDBClient
from esdbclient.events import CaughtUp, Checkpoint, RecordedEvent
from esdbclient.exceptions import AccessDeniedError, EventStoreDBClientException, GrpcError
from esdbclient.exceptions import SSLError as EventStoreSSLError

from cdr_platform.errors import PlatformError
from cdr_platform.events import USAGE_EVENT_TYPES
from cdr_platform.events.framing import DEFAULT_TARGET_BYTES, UserRecord
from cdr_platform.sources.backoff import Backoff
from cdr_platform.sources.eventstore_reader import type_filter
from cdr_platform.sources.kinesis_publisher import KinesisPublisher, KinesisPublishError
from cdr_platform.sources.relay_heartbeat import (
    HEARTBEAT_PARTITION_KEY,
    PRODUCER_CLOCK_TYPE,
    ClockReading,
    Heartbeat,
    encode_heartbeat,
)

log = logging.getLogger(__name__)


class RelayError(PlatformError):
    """The relay cannot continue; the message says what failed and what to check."""


class RelayConfigError(RelayError):
    """A configuration error: retrying cannot fix it, so the relay stops and says what to change."""


class SubscriptionEnded(RelayError):
    """The $all subscription ended without being stopped (a server shutting down ends it cleanly)."""


ENDPOINT_ERRORS: tuple[type[BaseException], ...] = (
    BotoCoreError,
    ClientError,
    KinesisPublishError,
    EventStoreDBClientException,
    grpc.RpcError,
    SubscriptionEnded,
)
"""What an endpoint can raise at the relay; each is retried unless ``is_configuration_error`` says not."""

KINESIS_CONFIGURATION_CODES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignature",
        "InvalidClientTokenId",
        "MissingAuthenticationToken",
        "NotAuthorized",
        "KMSAccessDeniedException",
        "ValidationException",
        "InvalidArgumentException",
    }
)
CONFIGURATION_ERRORS = (
    RelayConfigError,
    NoCredentialsError,
    PartialCredentialsError,
    NoRegionError,
    ParamValidationError,
    AccessDeniedError,
    EventStoreSSLError,
)
REFUSED_GRPC_CODES = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})


def _grpc_code(exc: BaseException) -> grpc.StatusCode | None:
    call = exc.args[0] if isinstance(exc, GrpcError) and exc.args else exc
    return call.code() if isinstance(call, grpc.Call) else None


def _kinesis_code(exc: BaseException) -> str | None:
    return exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None


def is_configuration_error(exc: BaseException) -> bool:
    """True when retrying cannot help (see the module docstring); looks through ``__cause__`` chains."""
    cause: BaseException | None = exc
    while cause is not None:
        if (
            isinstance(cause, CONFIGURATION_ERRORS)
            or _grpc_code(cause) in REFUSED_GRPC_CODES
            or _kinesis_code(cause) in KINESIS_CONFIGURATION_CODES
        ):
            return True
        cause = cause.__cause__
    return False


def describe_failure(exc: BaseException) -> str:
    """One line naming the endpoint and the reason, for the retry log."""
    kinesis = isinstance(exc, (BotoCoreError, ClientError, KinesisPublishError))
    reason = " ".join(str(exc).split()) or "no details"
    return f"{'Kinesis' if kinesis else 'EventStoreDB'}: {type(exc).__name__}: {reason}"


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
    retry_base_s: float = 0.5
    """First wait after an endpoint error; doubles per consecutive failure up to ``retry_cap_s``."""
    retry_cap_s: float = 30.0
    heartbeat_interval_s: float = 1.0
    """Least time between two heartbeats (wall clock); 0 sends none."""
    faults: FaultInjector | None = None

    def __post_init__(self) -> None:
        if self.heartbeat_interval_s < 0:
            raise RelayConfigError(
                f"heartbeat_interval_s must be 0 (off) or more, got {self.heartbeat_interval_s}"
            )
        if not 0 < self.retry_base_s <= self.retry_cap_s:
            raise RelayConfigError(
                "retries need 0 < retry_base_s <= retry_cap_s, "
                f"got {self.retry_base_s} and {self.retry_cap_s}"
            )

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
        raise RelayConfigError(
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
    retries: int = 0  # endpoint errors survived
    heartbeats: int = 0  # heartbeats sent (each on every open shard)


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
    """Reads the filtered $all subscription on a thread into a bounded queue (back-pressure).

    ``DONE`` is queued when the subscription ends; ``error`` then holds what ended it, if anything, for
    the relay's thread to retry or raise.
    """

    DONE = object()

    def __init__(self, client: EventStoreDBClient, after: int | None, event_types: Iterable[str]) -> None:
        self.queue: queue.Queue[object] = queue.Queue(maxsize=20_000)
        self.error: Exception | None = None
        self._stopping = threading.Event()
        self._subscription = client.subscribe_to_all(
            commit_position=after,
            filter_include=type_filter(event_types),
            include_checkpoints=True,
            include_caught_up=True,
        )
        self._thread = threading.Thread(target=self._pump, name="relay-subscription", daemon=True)
        self._thread.start()

    def _offer(self, item: object) -> bool:
        """Queue ``item`` unless stopping; False once stopping."""
        while not self._stopping.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self) -> None:
        try:
            for item in self._subscription:
                if not self._offer(item):
                    return
        except Exception as exc:  # handed over to the relay's thread, which retries or raises it
            if not self._stopping.is_set():
                self.error = exc
        self._offer(self.DONE)

    def stop(self) -> None:
        self._stopping.set()
        self._subscription.stop()
        self._thread.join(timeout=10)


@dataclass
class _Tally:
    events_read: int = 0
    caught_up: bool = False


class Relay:
    """One relay process; ``run`` returns when caught up (if asked), when stopped, or after
    ``stop_after_events``, and survives endpoint outages in between.

    Building one touches no endpoint (only the checkpoint file), so it can start during an outage.
    ``sleep`` paces the publisher's retries of throttled records; the relay's own retries wait on the
    ``stop`` event, so stopping never waits out a backoff.
    """

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
        self.retries = 0
        """Endpoint errors survived so far (one warning line each)."""
        self.published_clock = ClockReading()
        """The producer clock read from the events Kinesis has acknowledged (this process)."""
        self._heartbeat_through: datetime | None = None
        self._heartbeat_at = float("-inf")
        self.heartbeats = 0

    # -- main loop ---------------------------------------------------------------------------------------
    def run(
        self,
        until_caught_up: bool = False,
        stop: threading.Event | None = None,
        stop_after_events: int | None = None,
        on_batch: Callable[[RelayState], None] | None = None,
    ) -> RelayResult:
        """Relay until caught up (if asked), until ``stop`` is set, or after ``stop_after_events``.

        Endpoint errors are retried from the checkpoint (waits end early when ``stop`` is set);
        configuration errors raise ``RelayConfigError``. ``stop_after_events`` simulates a crash: the
        batch that crosses it is published but its checkpoint is not written, the worst case for
        duplicates.
        """
        stop = stop or threading.Event()
        backoff = Backoff(self.config.retry_base_s, self.config.retry_cap_s)
        tally = _Tally()
        while not stop.is_set():
            try:
                self._relay_from_checkpoint(
                    tally, backoff, until_caught_up, stop, stop_after_events, on_batch
                )
                break
            except ENDPOINT_ERRORS as exc:
                self._wait_before_retry(exc, backoff, stop)
        return RelayResult(
            tally.events_read,
            self.state.events_published,
            self.publisher.records_put,
            self.state.commit_position,
            tally.caught_up,
            self._faults_logged,
            self.retries,
            self.heartbeats,
        )

    def _relay_from_checkpoint(
        self,
        tally: _Tally,
        backoff: Backoff,
        until_caught_up: bool,
        stop: threading.Event,
        stop_after_events: int | None,
        on_batch: Callable[[RelayState], None] | None,
    ) -> None:
        """One subscription from the checkpoint: returns when done, raises what an endpoint raised."""
        subscription = _Subscription(
            self.eventstore, self.state.commit_position, self.config.event_types | {PRODUCER_CLOCK_TYPE}
        )
        batch: list[SourceEvent] = []
        clock = replace(self.published_clock)  # what is read from here on moves it once acknowledged
        position = self.state.commit_position
        tally.caught_up = False
        last_flush = time.monotonic()
        try:
            while not stop.is_set():
                try:
                    item = subscription.queue.get(timeout=self.config.flush_interval_s / 2)
                except queue.Empty:
                    item = None
                if item is _Subscription.DONE:
                    raise subscription.error or SubscriptionEnded(
                        f"the $all subscription ended after position {position}"
                    )
                if isinstance(item, CaughtUp):
                    tally.caught_up = True
                elif isinstance(item, Checkpoint):
                    position = max(position or 0, int(item.commit_position or 0))
                elif isinstance(item, RecordedEvent):
                    if item.type != PRODUCER_CLOCK_TYPE:  # a producer's clock moves the heartbeat only
                        batch.append(self._source_event(item))
                        tally.events_read += 1
                    position = int(item.commit_position or 0)
                    clock.read(item.type, item.data)
                full = len(batch) >= self.config.batch_events
                due = time.monotonic() - last_flush >= self.config.flush_interval_s
                if full or tally.caught_up or (due and (batch or position != self.state.commit_position)):
                    published = self._publish(batch)  # every event read so far: the clock is theirs
                    self.published_clock = replace(clock)
                    batch = []
                    last_flush = time.monotonic()
                    crossed = (
                        stop_after_events is not None
                        and self.state.events_published + published >= stop_after_events
                    )
                    if crossed:
                        return
                    self._commit(position, published)
                    if backoff.failures:
                        log.info("relay: resumed, checkpoint %s", position)
                        backoff.reset()
                    if on_batch is not None:
                        on_batch(self.state)
                    self._maybe_heartbeat(force=tally.caught_up and until_caught_up)
                    if tally.caught_up and until_caught_up:
                        return
                    tally.caught_up = False
                else:
                    self._maybe_heartbeat()
        finally:
            subscription.stop()

    def _maybe_heartbeat(self, force: bool = False) -> None:
        """Put a heartbeat on every open shard if the published clock moved and the interval has passed
        (``force``: whatever the interval, as a relay that stops when caught up does last). Kinesis
        refusing it is logged and tried again at the next interval: the events are already safe."""
        through = self.published_clock.time
        if not self.config.heartbeat_interval_s or through is None or through == self._heartbeat_through:
            return
        if not force and time.monotonic() - self._heartbeat_at < self.config.heartbeat_interval_s:
            return
        self._heartbeat_at = time.monotonic()
        heartbeat = encode_heartbeat(Heartbeat(through, self.state.commit_position))
        try:
            self.publisher.put_on_every_shard(HEARTBEAT_PARTITION_KEY, heartbeat)
        except KinesisPublishError as exc:
            interval = self.config.heartbeat_interval_s
            log.warning("relay: heartbeat not sent (%s); trying again in %.1fs", exc, interval)
            return
        self._heartbeat_through = through
        self.heartbeats += 1

    def _wait_before_retry(self, exc: BaseException, backoff: Backoff, stop: threading.Event) -> None:
        """Log the failure once, wait out the backoff (or until stopped), and drop the shard map."""
        if is_configuration_error(exc):
            raise RelayConfigError(
                f"{describe_failure(exc)} (stream {self.config.stream_name}); retrying cannot fix this: "
                "check the endpoint, stream and credential settings"
            ) from exc
        delay = backoff.next_delay()
        self.retries += 1
        log.warning(
            "relay: %s; retry %d (failure %d in a row) in %.2fs from checkpoint %s, stream %s",
            describe_failure(exc),
            self.retries,
            backoff.failures,
            delay,
            self.state.commit_position,
            self.config.stream_name,
        )
        stop.wait(delay)
        self.publisher.forget_shards()

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
