"""Run the operator model through time and hand its events to a sink, in backfill or live mode.

Records are released when mediation would have them complete (a call at its release, plus rating),
or, for a late transaction, hours after that. The simulated period is cut into chunks (an hour in
backfill); each chunk's records become one append per stream, so streams receive their events in time
order and $all is roughly chronological. Member and balance streams receive several appends over the
run; their expected versions are counted here, which is what makes a re-run idempotent.

Backfill runs as fast as the sink allows (generation of the next chunk overlaps the appends of the
previous one). Live mode releases each chunk when the wall clock, scaled by ``speed``, reaches its end;
the part of its period before ``live_from`` (a seeded history) is appended first, as fast as a backfill.

A run can resume from ``resume_from``, the clock a previous run of the same operator had reached
(``on_appended`` reports it after each acknowledged chunk): the schedule is regenerated, the records
released before that clock are counted (for the expected versions) but not appended again, and the
run goes on from there, so it never collides with the streams the earlier run wrote.
"""

from __future__ import annotations

import heapq
import itertools
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TextIO

from cdr_platform.simulator.builders import ProducedEvent, events_of, stream_of
from cdr_platform.simulator.faults import FaultConfig, late_delay_hours
from cdr_platform.simulator.ground_truth import GroundTruthWriter
from cdr_platform.simulator.model import Operator
from cdr_platform.simulator.producers import EventSink, PendingAppends, StreamAppend
from cdr_platform.simulator.traffic import (
    CallRecord,
    DataSessionRecord,
    Record,
    SmsRecord,
    day_count,
    lifecycle_records,
    member_day,
)

MULTI_APPEND_CATEGORIES = ("member-", "balance-")
CATCH_UP_CHUNK = timedelta(hours=1)
"""Chunk length before ``catch_up_until``: history is appended an hour at a time, like a backfill."""


@dataclass(frozen=True, slots=True)
class Release:
    """A record to append at ``release_at``; ``late_hours`` is set for a late-fault transaction."""

    release_at: datetime
    record: Record
    late_hours: float | None


@dataclass(frozen=True)
class Chunk:
    end: datetime  # simulated clock once this chunk is appended
    releases: list[Release]


def release_schedule(
    operator: Operator, faults: FaultConfig, chunk: timedelta, catch_up_until: datetime | None = None
) -> Iterator[Chunk]:
    """Chunks of releases in time order; deterministic for the operator and fault seeds.

    Chunks are ``chunk`` long, except before ``catch_up_until``: there they are ``CATCH_UP_CHUNK``
    long and one ends exactly at it. Which chunk a release falls in never changes what is released.
    Days are generated one at a time, so memory holds about one day of records plus the carry-over
    (transactions completing after midnight, late ones).
    """
    catch_up_until = catch_up_until or operator.start
    heap: list[tuple[datetime, int, Release]] = []
    order = itertools.count()

    def push(record: Record, late_hours: float | None = None) -> None:
        release_at = max(record.completed_at, operator.start)
        if late_hours is not None:
            release_at += timedelta(hours=late_hours)
        heapq.heappush(heap, (release_at, next(order), Release(release_at, record, late_hours)))

    for member in operator.members:
        for change in lifecycle_records(member):
            push(change)
    clock = operator.start
    for day in range(day_count(operator)):
        for member in operator.members:
            for record in member_day(operator, member, day):
                late = None
                if isinstance(record, CallRecord | SmsRecord | DataSessionRecord):
                    late = late_delay_hours(faults, record.correlation_id)
                push(record, late)
        day_end = min(operator.start + timedelta(days=day + 1), operator.end)
        while clock < day_end:
            if clock < catch_up_until:
                clock = min(clock + CATCH_UP_CHUNK, day_end, catch_up_until)
            else:
                clock = min(clock + chunk, day_end)
            yield Chunk(clock, _pop_until(heap, clock))
    while heap:
        clock += chunk
        yield Chunk(clock, _pop_until(heap, clock))


def _pop_until(heap: list[tuple[datetime, int, Release]], end: datetime) -> list[Release]:
    released = []
    while heap and heap[0][0] < end:
        released.append(heapq.heappop(heap)[2])
    return released


class Progress:
    """A self-refreshing status line on stderr: events, events/s and the simulated clock."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 0.5) -> None:
        self.stream = stream or sys.stderr
        self.every_s = every_s if self.stream.isatty() else 5.0
        self.started = time.monotonic()
        self._last = 0.0

    def update(self, clock: datetime, events: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        rate = events / max(now - self.started, 1e-9)
        line = f"simulated {clock:%Y-%m-%d %H:%M:%S}Z  {events:>10,} events  {rate:>9,.0f} events/s"
        end = "\r" if self.stream.isatty() else "\n"
        print(line, end=end, file=self.stream, flush=True)

    def close(self, clock: datetime, events: int) -> None:
        self.update(clock, events, force=True)
        if self.stream.isatty():
            print(file=self.stream)


@dataclass
class SimulationResult:
    events_by_type: Counter[str] = field(default_factory=Counter)
    streams_appended: int = 0
    late_transactions: int = 0
    elapsed_s: float = 0.0
    clock: datetime | None = None

    @property
    def events(self) -> int:
        return sum(self.events_by_type.values())

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s else 0.0


class Simulation:
    """Drives the schedule into a sink, recording ground truth and progress as it goes."""

    def __init__(
        self,
        operator: Operator,
        sink: EventSink,
        faults: FaultConfig | None = None,
        ground_truth: GroundTruthWriter | None = None,
        progress: Progress | None = None,
        resume_from: datetime | None = None,
        on_appended: Callable[[datetime], None] | None = None,
    ) -> None:
        self.operator = operator
        self.sink = sink
        self.faults = faults or FaultConfig(seed=operator.seed)
        self.ground_truth = ground_truth
        self.progress = progress
        self.resume_from = resume_from
        self.on_appended = on_appended
        """Called with the clock up to which every release is appended, after each acknowledged chunk."""
        self._stream_counts: dict[str, int] = {}
        self.result = SimulationResult()

    def run_backfill(self, chunk: timedelta = timedelta(hours=1)) -> SimulationResult:
        """The whole period as fast as the sink takes it."""
        chunks = release_schedule(self.operator, self.faults, chunk, self.resume_from)
        return self._run(chunks, pace=None, mode="backfill")

    def run_live(
        self,
        speed: float = 1.0,
        stop: threading.Event | None = None,
        now: Callable[[], float] = time.time,
        live_from: datetime | None = None,
    ) -> SimulationResult:
        """Real-time pace: simulated time runs ``speed`` times faster than the wall clock from the start.

        The period before ``live_from`` (or before ``resume_from``, whichever is later) is appended as
        fast as the sink takes it; from there on, chunks follow the wall clock. Stops at the end of the
        period (remaining late transactions are then appended at once) or when ``stop`` is set.
        """
        stop = stop or threading.Event()
        chunk = timedelta(seconds=max(1.0, speed))
        anchor = max(
            self.operator.start, live_from or self.operator.start, self.resume_from or self.operator.start
        )
        wall_start = now()

        def pace(clock: datetime) -> bool:
            due = wall_start + (clock - anchor).total_seconds() / speed
            stop.wait(max(0.0, due - now()))
            return not stop.is_set()

        chunks = release_schedule(self.operator, self.faults, chunk, anchor)
        return self._run(chunks, pace=pace, mode="live")

    def _run(
        self, chunks: Iterator[Chunk], pace: Callable[[datetime], bool] | None, mode: str
    ) -> SimulationResult:
        started = time.monotonic()
        if self.ground_truth is not None:
            self.ground_truth.write_operator(self.operator)
        pending: PendingAppends | None = None
        finished = True
        acknowledged: datetime | None = None
        for chunk in chunks:
            if self.resume_from is not None and chunk.end <= self.resume_from:
                self._count_appended(chunk)
                continue
            if pace is not None and chunk.end <= self.operator.end and not pace(chunk.end):
                finished = False
                break
            appends = self._appends(chunk)
            if pending is not None:
                pending.wait()
                self._acknowledged(acknowledged)
            pending = self.sink.submit(appends)
            acknowledged = self.result.clock = chunk.end
            if self.progress is not None:
                self.progress.update(chunk.end, self.result.events)
        if pending is not None:
            pending.wait()
            self._acknowledged(acknowledged)
        self.result.elapsed_s = time.monotonic() - started
        if self.progress is not None and self.result.clock is not None:
            self.progress.close(self.result.clock, self.result.events)
        if self.ground_truth is not None:
            self.ground_truth.write_run(
                mode, self.operator, self.faults, dict(self.result.events_by_type), finished
            )
        return self.result

    def _acknowledged(self, clock: datetime | None) -> None:
        if self.on_appended is not None and clock is not None:
            self.on_appended(clock)

    def _count_appended(self, chunk: Chunk) -> None:
        """What an earlier run appended for this chunk: only the multi-append streams' counts matter."""
        for release in chunk.releases:
            stream = stream_of(release.record)
            if stream.startswith(MULTI_APPEND_CATEGORIES):
                self._stream_counts[stream] = self._stream_counts.get(stream, 0) + len(
                    events_of(release.record)
                )

    def _appends(self, chunk: Chunk) -> list[StreamAppend]:
        """One append per stream for the chunk, with the expected count before it."""
        by_stream: dict[str, list[ProducedEvent]] = {}
        late: dict[str, float] = {}  # a late transaction has a stream of its own
        for release in chunk.releases:
            events = events_of(release.record)
            stream = stream_of(release.record)
            by_stream.setdefault(stream, []).extend(events)
            self.result.events_by_type.update(e.event_type for e in events)
            if release.late_hours is not None:
                late[stream] = release.late_hours
                self.result.late_transactions += 1
            if self.ground_truth is not None:
                self.ground_truth.write_record(release.record)
        appends = []
        for stream, events in by_stream.items():
            before = 0
            if stream.startswith(MULTI_APPEND_CATEGORIES):
                before = self._stream_counts.get(stream, 0)
                self._stream_counts[stream] = before + len(events)
            appends.append(StreamAppend(stream, before, events))
            if self.ground_truth is not None:
                self.ground_truth.write_events(events, late.get(stream))
        self.result.streams_appended += len(appends)
        return appends


def default_start(days: float, today: datetime | None = None) -> datetime:
    """Midnight UTC ``days`` before today's midnight: the period ends at the start of today (UTC)."""
    today = today or datetime.now(UTC)
    midnight = today.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=days)
