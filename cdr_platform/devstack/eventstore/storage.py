"""The event log behind the dev server: an in-memory index, optionally journalled to SQLite.

Guarantees (the ones EventStoreDB gives and esdbclient relies on):

- One writer at a time (a single lock): stream revisions are 0-based and dense, global positions are
  unique, strictly increasing, byte-offset-like (they advance by each record's size) and start above 0.
- An append is all or nothing. In SQLite mode it is one transaction with ``synchronous=FULL`` in WAL
  mode, committed before the append is acknowledged, so an acknowledged append survives ``kill -9``.
- Idempotent appends: the same event ids at the same expected version return the original result and
  write nothing; a partial overlap plus new events is a version conflict.
- Readers never take the writer lock for long: the log and each stream are append-only lists, indexed
  in memory even in SQLite mode, so reads never go back to SQL.
"""

from __future__ import annotations

import bisect
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cdr_platform.devstack.eventstore.errors import (
    Expected,
    ExpectedKind,
    MaximumAppendSizeExceeded,
    StreamDeleted,
    WrongExpectedVersion,
)

MAX_REVISION = 2**63 - 1
"""Revision of a tombstone record, and the ``$tb`` value that marks a soft-deleted stream."""
MAX_APPEND_SIZE = 1024 * 1024
"""EventStoreDB's default maximum size of one append (data plus metadata of all its events)."""
FIRST_POSITION = 512
"""Position of the first record: like a real log, positions never start at 0."""
RECORD_HEADER_SIZE = 72
"""Fixed bytes added to each record's size when advancing the position, as a real record header."""
EPOCH_STREAM = "$epoch-information"
METADATA_EVENT_TYPE = "$metadata"
TOMBSTONE_EVENT_TYPE = "$streamDeleted"


@dataclass(slots=True)
class ProposedEvent:
    """An event as a client proposes it (id already validated as a canonical UUID string)."""

    event_id: str
    event_type: str
    content_type: str
    data: bytes
    custom_metadata: bytes


@dataclass(slots=True)
class EventRecord:
    """A committed event. ``wire`` caches its serialised ReadResp, built on first read."""

    position: int
    stream: str
    revision: int
    event_id: str
    event_type: str
    content_type: str
    data: bytes
    custom_metadata: bytes
    created: int
    wire: bytes | None = None


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Outcome of an append: the stream's revision after it and the last event's position (None if empty)."""

    revision: int | None
    position: int | None


@dataclass(slots=True)
class StreamState:
    """Everything the index knows about one stream; ``records[i].revision == i``."""

    name: str
    records: list[EventRecord] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)
    tombstone: EventRecord | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def last_revision(self) -> int:
        """Revision of the last event, -1 when there is none."""
        return len(self.records) - 1

    @property
    def soft_deleted(self) -> bool:
        """True after a soft delete, until the next append undeletes the stream."""
        return self.metadata.get("$tb") == MAX_REVISION

    def first_visible_revision(self) -> int:
        """First revision a read may return, honouring ``$tb`` and ``$maxCount`` from the metadata."""
        start = 0
        truncate_before = self.metadata.get("$tb")
        if isinstance(truncate_before, int):
            start = truncate_before
        max_count = self.metadata.get("$maxCount")
        if isinstance(max_count, int) and max_count >= 0:
            start = max(start, len(self.records) - max_count)
        return start


class Journal(Protocol):
    """Where the log and persistent-subscription state are made durable (or not)."""

    def load_events(self) -> Iterator[EventRecord]:
        """Every committed record, in position order."""
        ...

    def write_events(self, records: Sequence[EventRecord]) -> None:
        """Commit the records of one append in one transaction."""
        ...

    def load_groups(self) -> list[tuple[str, str, str, str | None]]:
        """(stream, group, definition JSON, state JSON) of every persistent subscription."""
        ...

    def save_group(self, stream: str, group: str, definition: str) -> None:
        """Create or replace a persistent subscription definition."""
        ...

    def save_group_state(self, stream: str, group: str, state: str) -> None:
        """Record a persistent subscription's checkpoint and parked events."""
        ...

    def delete_group(self, stream: str, group: str) -> None:
        """Forget a persistent subscription."""
        ...

    def close(self) -> None:
        """Release the storage."""
        ...


class MemoryJournal:
    """The in-memory mode used by tests: nothing is written anywhere."""

    def load_events(self) -> Iterator[EventRecord]:
        """Nothing survives a restart in memory mode."""
        return iter(())

    def write_events(self, records: Sequence[EventRecord]) -> None:
        """Nothing to do: the in-memory index is the only copy."""

    def load_groups(self) -> list[tuple[str, str, str, str | None]]:
        """No subscriptions survive a restart in memory mode."""
        return []

    def save_group(self, stream: str, group: str, definition: str) -> None:
        """Nothing to do in memory mode."""

    def save_group_state(self, stream: str, group: str, state: str) -> None:
        """Nothing to do in memory mode."""

    def delete_group(self, stream: str, group: str) -> None:
        """Nothing to do in memory mode."""

    def close(self) -> None:
        """Nothing to release."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    revision INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    content_type TEXT NOT NULL,
    data BLOB NOT NULL,
    metadata BLOB NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS persistent_subscriptions (
    stream TEXT NOT NULL,
    group_name TEXT NOT NULL,
    definition TEXT NOT NULL,
    state TEXT,
    PRIMARY KEY (stream, group_name)
);
"""


class SqliteJournal:
    """Durable mode: WAL, ``synchronous=FULL``, one transaction per append.

    The connection is shared by the writer and the persistent-subscription threads, so every use
    goes through ``self._lock``.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def load_events(self) -> Iterator[EventRecord]:
        """Stream every row in position order, in pages, so a large log loads without a big copy."""
        with self._lock:
            rows = self._db.execute(
                "SELECT position, stream, revision, event_id, event_type, content_type, data, metadata,"
                " created FROM events ORDER BY position"
            )
            while page := rows.fetchmany(10_000):
                for row in page:
                    yield EventRecord(*row)

    def write_events(self, records: Sequence[EventRecord]) -> None:
        """Insert one append's records in a single committed transaction."""
        rows = [
            (
                r.position,
                r.stream,
                r.revision,
                r.event_id,
                r.event_type,
                r.content_type,
                r.data,
                r.custom_metadata,
                r.created,
            )
            for r in records
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def load_groups(self) -> list[tuple[str, str, str, str | None]]:
        """Every stored persistent subscription definition with its last saved state."""
        with self._lock:
            return list(
                self._db.execute("SELECT stream, group_name, definition, state FROM persistent_subscriptions")
            )

    def save_group(self, stream: str, group: str, definition: str) -> None:
        """Create or replace a definition, keeping any saved state."""
        with self._lock:
            self._db.execute(
                "INSERT INTO persistent_subscriptions (stream, group_name, definition) VALUES (?, ?, ?)"
                " ON CONFLICT (stream, group_name) DO UPDATE SET definition = excluded.definition",
                (stream, group, definition),
            )

    def save_group_state(self, stream: str, group: str, state: str) -> None:
        """Store the checkpoint and parked positions of a subscription group."""
        with self._lock:
            self._db.execute(
                "UPDATE persistent_subscriptions SET state = ? WHERE stream = ? AND group_name = ?",
                (state, stream, group),
            )

    def delete_group(self, stream: str, group: str) -> None:
        """Remove a definition and its state."""
        with self._lock:
            self._db.execute(
                "DELETE FROM persistent_subscriptions WHERE stream = ? AND group_name = ?", (stream, group)
            )

    def close(self) -> None:
        """Close the connection (committed data is already on disk)."""
        with self._lock:
            self._db.close()


def metastream_of(stream: str) -> str:
    """Name of the stream holding ``stream``'s metadata, as EventStoreDB names it."""
    return f"$${stream}"


def _position_after(record: EventRecord) -> int:
    """Where the record after this one starts: positions advance by the record's size."""
    return (
        record.position
        + RECORD_HEADER_SIZE
        + len(record.stream.encode())
        + len(record.event_type.encode())
        + len(record.data)
        + len(record.custom_metadata)
    )


class EventLog:
    """The global log ($all) plus a per-stream index, shared by every gRPC handler."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.records: list[EventRecord] = []
        self.positions: list[int] = []
        self._streams: dict[str, StreamState] = {}
        self._next_position = FIRST_POSITION
        self._lock = threading.Lock()
        self._changed = threading.Condition(threading.Lock())
        self._listeners: list[Callable[[], None]] = []
        for record in journal.load_events():
            self._index(record)
        if self.records:
            self._next_position = _position_after(self.records[-1])
        else:
            self._write_epoch()

    # -- reading -------------------------------------------------------------------------------

    def stream(self, name: str) -> StreamState | None:
        """The stream's index entry, or None if nothing was ever written to or about it."""
        return self._streams.get(name)

    def check_readable(self, name: str) -> StreamState | None:
        """The stream if it can be read; None when it does not exist or was soft-deleted.

        Raises StreamDeleted for a tombstoned stream and for the metastream of one.
        """
        owner = name[2:] if name.startswith("$$") else name
        owner_state = self._streams.get(owner)
        if owner_state is not None and owner_state.tombstone is not None:
            raise StreamDeleted(owner)
        state = self._streams.get(name)
        if state is None or not state.records or state.soft_deleted:
            return None
        return state

    def index_at_or_after(self, position: int) -> int:
        """Index in ``records`` of the first record whose position is >= position."""
        return bisect.bisect_left(self.positions, position)

    def index_after(self, position: int) -> int:
        """Index in ``records`` of the first record whose position is > position."""
        return bisect.bisect_right(self.positions, position)

    @property
    def next_position(self) -> int:
        """The position the next record will get (greater than every existing one)."""
        return self._next_position

    def wait_for_records(self, seen: int, timeout: float) -> None:
        """Block until the log holds more than ``seen`` records, a wake-up, or the timeout."""
        with self._changed:
            if len(self.records) <= seen:
                self._changed.wait(timeout)

    def wake_all(self) -> None:
        """Wake every waiting reader (used when a subscriber's call ends)."""
        with self._changed:
            self._changed.notify_all()

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (cheaply, without arguments) after every committed write."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        """Stop calling a listener added with add_listener."""
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    # -- writing -------------------------------------------------------------------------------

    def append(self, stream: str, expected: Expected, events: Sequence[ProposedEvent]) -> AppendResult:
        """Append events atomically after checking the expectation (see the module docstring)."""
        size = sum(len(e.data) + len(e.custom_metadata) for e in events)
        if size > MAX_APPEND_SIZE:
            raise MaximumAppendSizeExceeded(size, MAX_APPEND_SIZE)
        with self._lock:
            self._check_writable(stream)
            state = self._streams.get(stream)
            idempotent = self._idempotent_result(stream, state, expected, events)
            if idempotent is not None:
                return idempotent
            current = state.last_revision if state is not None else -1
            soft_deleted = state is not None and state.soft_deleted
            if not _satisfies(expected, current, soft_deleted):
                raise WrongExpectedVersion(stream, expected, current if current >= 0 else None)
            if not events:
                return AppendResult(current if current >= 0 else None, None)
            pending: list[EventRecord] = []
            if soft_deleted and state is not None:
                undeleted = {**state.metadata, "$tb": current + 1}
                pending.append(self._metadata_record(stream, undeleted, pending))
            first = current + 1
            for offset, event in enumerate(events):
                pending.append(self._new_record(stream, first + offset, event, pending))
            self._commit(pending)
            last = pending[-1]
            return AppendResult(last.revision, last.position)

    def delete(self, stream: str, expected: Expected) -> int:
        """Soft delete: write ``$tb = MAX_REVISION`` to the metastream; returns its position."""
        with self._lock:
            state = self._streams.get(stream)
            if state is not None and state.tombstone is not None:
                raise StreamDeleted(stream)
            if state is None or not state.records or state.soft_deleted:
                if state is not None and state.soft_deleted and expected.kind is ExpectedKind.EXISTS:
                    raise StreamDeleted(stream)
                raise WrongExpectedVersion(stream, expected, None)
            if not _satisfies(expected, state.last_revision, soft_deleted=False):
                raise WrongExpectedVersion(stream, expected, state.last_revision)
            record = self._metadata_record(stream, {**state.metadata, "$tb": MAX_REVISION}, [])
            self._commit([record])
            return record.position

    def tombstone(self, stream: str, expected: Expected) -> int:
        """Hard delete: write a ``$streamDeleted`` record; the stream is gone for good."""
        with self._lock:
            state = self._streams.get(stream)
            if state is not None and state.tombstone is not None:
                raise StreamDeleted(stream)
            current = state.last_revision if state is not None else -1
            if not _satisfies(expected, current, soft_deleted=False):
                raise WrongExpectedVersion(stream, expected, current if current >= 0 else None)
            tombstone = ProposedEvent(
                "00000000-0000-0000-0000-000000000000", TOMBSTONE_EVENT_TYPE, "", b"", b""
            )
            record = self._new_record(stream, MAX_REVISION, tombstone, [])
            record.event_id = _tombstone_id(record.position)
            self._commit([record])
            return record.position

    # -- internals -----------------------------------------------------------------------------

    def _check_writable(self, stream: str) -> None:
        owner = stream[2:] if stream.startswith("$$") else stream
        for name in {stream, owner}:
            state = self._streams.get(name)
            if state is not None and state.tombstone is not None:
                raise StreamDeleted(name)

    def _idempotent_result(
        self, stream: str, state: StreamState | None, expected: Expected, events: Sequence[ProposedEvent]
    ) -> AppendResult | None:
        """The original result when these events were already written at this expectation."""
        if state is None or not state.records or not events:
            return None
        if expected.kind is ExpectedKind.REVISION:
            start: int | None = expected.revision + 1
        elif expected.kind is ExpectedKind.NO_STREAM:
            start = 0
        else:
            start = state.ids.get(events[0].event_id)
        if start is None or start >= len(state.records):
            return None
        existing = state.records[start : start + len(events)]
        if len(existing) == len(events) and all(
            r.event_id == e.event_id for r, e in zip(existing, events, strict=True)
        ):
            return AppendResult(existing[-1].revision, existing[-1].position)
        if expected.kind in (ExpectedKind.ANY, ExpectedKind.EXISTS):
            raise WrongExpectedVersion(stream, expected, state.last_revision)
        return None

    def _new_record(
        self, stream: str, revision: int, event: ProposedEvent, pending: list[EventRecord]
    ) -> EventRecord:
        return EventRecord(
            position=_position_after(pending[-1]) if pending else self._next_position,
            stream=stream,
            revision=revision,
            event_id=event.event_id,
            event_type=event.event_type,
            content_type=event.content_type,
            data=event.data,
            custom_metadata=event.custom_metadata,
            created=time.time_ns() // 100,
        )

    def _metadata_record(
        self, stream: str, metadata: dict[str, Any], pending: list[EventRecord]
    ) -> EventRecord:
        meta_stream = metastream_of(stream)
        state = self._streams.get(meta_stream)
        revision = (state.last_revision if state is not None else -1) + 1
        event = ProposedEvent(
            str(uuid.uuid4()), METADATA_EVENT_TYPE, "application/json", json.dumps(metadata).encode(), b""
        )
        return self._new_record(meta_stream, revision, event, pending)

    def _commit(self, pending: list[EventRecord]) -> None:
        """Journal first (durable before acknowledged), then publish to readers and wake them."""
        self.journal.write_events(pending)
        for record in pending:
            self._index(record)
        self._next_position = _position_after(pending[-1])
        with self._changed:
            self._changed.notify_all()
        for listener in list(self._listeners):
            listener()

    def _index(self, record: EventRecord) -> None:
        state = self._streams.get(record.stream)
        if state is None:
            state = self._streams[record.stream] = StreamState(record.stream)
        if record.revision == MAX_REVISION and record.event_type == TOMBSTONE_EVENT_TYPE:
            state.tombstone = record
        else:
            state.ids[record.event_id] = record.revision
            state.records.append(record)
        if record.stream.startswith("$$") and record.event_type == METADATA_EVENT_TYPE:
            owner = record.stream[2:]
            owner_state = self._streams.get(owner)
            if owner_state is None:
                owner_state = self._streams[owner] = StreamState(owner)
            owner_state.metadata = _parse_metadata(record.data)
        self.records.append(record)
        self.positions.append(record.position)

    def _write_epoch(self) -> None:
        """A fresh log starts with a system event, as a real node writes its first epoch."""
        data = json.dumps({"epochNumber": 0, "epochPosition": 0, "leaderInstanceId": str(uuid.uuid4())})
        event = ProposedEvent(str(uuid.uuid4()), EPOCH_STREAM, "application/json", data.encode(), b"")
        with self._lock:
            self._commit([self._new_record(EPOCH_STREAM, 0, event, [])])


def _satisfies(expected: Expected, current: int, soft_deleted: bool) -> bool:
    kind = expected.kind
    if kind is ExpectedKind.ANY:
        return True
    if kind is ExpectedKind.NO_STREAM:
        return current == -1 or soft_deleted
    if kind is ExpectedKind.EXISTS:
        return current >= 0 and not soft_deleted
    return current == expected.revision


def _tombstone_id(position: int) -> str:
    return f"00000000-0000-0000-0000-{position:012x}"


def _parse_metadata(data: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def open_journal(db_path: Path | None) -> Journal:
    """SQLite journal at ``db_path``, or the in-memory one when it is None."""
    return MemoryJournal() if db_path is None else SqliteJournal(db_path)
