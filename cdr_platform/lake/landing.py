"""Land a batch of source records in the raw layer: rows, dead letters and checkpoints, atomically.

Guarantees:
- One DuckLake transaction per batch commits the new rows, the dead letters and the source
  checkpoints together. A crash before the commit lands nothing and leaves the checkpoint where
  it was, so the same records are read again; a crash after it has already moved the checkpoint.
- ``event_id`` is unique across ``raw.usage_events`` and ``raw.member_events`` whatever path
  brought an event (Kinesis, EventStoreDB, a replay): the first sighting wins and keeps its
  source, position and ingestion time; later sightings are counted as duplicates. This holds for
  every later sighting whose ``occurred_at`` is within the dedupe window (``dedupe_window_hours``,
  inclusive at both ends) of the first one's: the check reads only that slice of event time, so
  its cost is flat in history. A sighting further away lands a second row (see the README).
- A record that does not parse goes to ``raw.dead_letter`` with its bytes, position and the exact
  rejection; it is keyed by source and position, so a redelivered bad record is stored once.
- One record never fails a batch: if parsing it raises anyway (a parser bug), or yields text the
  warehouse cannot store, that record is dead-lettered as ``parser_exception`` with the exception
  named, and the rest of the batch lands (``parse_record``).
DuckLake has no unique keys: each transaction claims what its rows can collide with
(``lake/claims.py``), so two writers that could land one event conflict at commit and the loser re-runs
with the winner's rows in view. On a Postgres catalog, writers of disjoint key ranges (shard groups)
commit side by side; on SQLite every writer takes the one writer claim.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from cdr_platform.events import MEMBER_EVENT_TYPES, Event, EventRow, Rejection, RejectionReason, parse_event
from cdr_platform.events.rejection import storable_text
from cdr_platform.lake.claims import claim_for_events
from cdr_platform.lake.connection import in_transaction
from cdr_platform.lake.schema import RAW_TABLES

DEAD_LETTER_NAMESPACE = uuid.UUID("6f1c1d3e-3b0a-4d53-9d8e-5a1c2b7e9f10")
EVENT_COLUMNS = [name.removesuffix("_json") for name in EventRow._fields]  # payload_json lands as payload

LANDING_ATTEMPTS = 12
"""Commits a landing tries before it gives up: concurrent shard workers lose races now and then."""

Parser = Callable[[bytes], Event | Rejection]
"""Turns one record's bytes into an event or a rejection: ``parse_event``, or a stand-in in tests."""


@dataclass(frozen=True)
class SourceRecord:
    """Bytes as a source delivered them, with the source's position for them."""

    data: bytes
    position: str


@dataclass(frozen=True)
class ShardCheckpoint:
    """How far one Kinesis shard has landed: the last sequence number, and whether it ended."""

    stream_name: str
    shard_id: str
    sequence_number: str | None
    shard_ended: bool = False
    published_through: datetime | None = None
    """The latest relay heartbeat's time read from the shard so far (``sources/relay_heartbeat``)."""


@dataclass(frozen=True)
class EventStoreCheckpoint:
    """How far a consumer of EventStoreDB's $all has landed (a commit position)."""

    consumer: str
    commit_position: int


@dataclass
class LandingBatch:
    source: str
    records: Sequence[SourceRecord]
    shard_checkpoints: Sequence[ShardCheckpoint] = field(default_factory=list)
    eventstore_checkpoint: EventStoreCheckpoint | None = None


@dataclass(frozen=True)
class LandingResult:
    received: int
    landed_usage: int
    landed_member: int
    duplicates: int
    dead_lettered: int

    @property
    def landed(self) -> int:
        return self.landed_usage + self.landed_member


def parse_record(data: bytes, parse: Parser = parse_event) -> EventRow | Rejection:
    """The record's warehouse row, or why it has none. Never raises an ``Exception``.

    ``parse_event`` itself never raises (its property tests say so); this guard is what makes that a
    guarantee of landing, whatever the cause: an exception while parsing or flattening one record, or
    text the warehouse cannot store (DuckDB invalidates the database on a lone surrogate), becomes a
    ``parser_exception`` rejection naming the exception and where it was raised. Fix the parser, then
    re-process the dead letter.
    """
    try:
        parsed = parse(data)
        if isinstance(parsed, Rejection):
            _check_storable("rejection", [("detail", parsed.detail), ("event_type", parsed.event_type)])
            return parsed
        row = parsed.to_row()
        plain = parse is parse_event and _ascii_without_escapes(data)
        if not plain and not "".join([value for value in row if isinstance(value, str)]).isascii():
            _check_storable("event", zip(EventRow._fields, row, strict=True))  # ASCII text always is
        return row
    except Exception as exc:
        return Rejection(RejectionReason.PARSER_EXCEPTION, _describe_exception(exc))


def _ascii_without_escapes(data: bytes) -> bool:
    """Whether every text ``parse_event`` reads from ``data`` is ASCII (so storable) without looking
    at the row: ASCII bytes with no ``\\u`` escape cannot decode to anything else, and pydantic
    re-encodes ASCII text as ASCII. Two C scans instead of joining the row's text."""
    return data.isascii() and b"\\u" not in data


def _check_storable(what: str, fields: Iterable[tuple[str, object]]) -> None:
    """Raise ``ValueError`` naming the first text field a warehouse VARCHAR cannot hold."""
    for name, value in fields:
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(f"the {what}'s {name} is not UTF-8 text: {exc.reason}") from None


def _describe_exception(exc: Exception) -> str:
    """The exception's type, message and innermost frame, as bounded, storable text, e.g.
    ``OverflowError: integer division result too large for a float (upcasting.py:79 in call_ended_v1_to_v2)``.
    """
    try:
        message = str(exc)
    except Exception:  # an exception whose message cannot be built still has a type
        message = "<message unavailable>"
    text = f"{type(exc).__name__}: {message}"[:400]
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        text += f" ({Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name})"
    return storable_text(text, 600)


@dataclass(frozen=True)
class _Incoming:
    """A batch's new rows for one raw table, first sighting per event_id, as columns for DuckDB."""

    frame: pd.DataFrame
    times: list[datetime]


def _event_frame(events: list[tuple[EventRow, SourceRecord]]) -> _Incoming:
    """Columns built straight from the rows (no per-row DataFrame work); the source and ingestion
    time are the same for every row, so the insert binds them once instead of carrying columns."""
    first: dict[str, tuple[EventRow, SourceRecord]] = {}
    for row, record in events:
        first.setdefault(row.event_id, (row, record))  # the first sighting in the batch wins
    if not first:
        return _Incoming(pd.DataFrame(), [])
    rows = [row for row, _ in first.values()]
    columns = dict(zip(EVENT_COLUMNS, (list(column) for column in zip(*rows, strict=True)), strict=True))
    columns["source_position"] = [record.position for _, record in first.values()]
    return _Incoming(pd.DataFrame(columns), columns["occurred_at"])


def split_parsed(
    records: Iterable[SourceRecord], parse: Parser = parse_event
) -> tuple[
    list[tuple[EventRow, SourceRecord]],
    list[tuple[EventRow, SourceRecord]],
    list[tuple[Rejection, SourceRecord]],
]:
    """Parse every record through ``parse_record``: (usage rows, member rows, rejections), in source order."""
    usage, member, rejected = [], [], []
    for record in records:
        parsed = parse_record(record.data, parse)
        if isinstance(parsed, Rejection):
            rejected.append((parsed, record))
        elif parsed.event_type in MEMBER_EVENT_TYPES:
            member.append((parsed, record))
        else:
            usage.append((parsed, record))
    return usage, member, rejected


def configured_dedupe_window() -> timedelta:
    """The dedupe window of the settings (``CDR_DEDUPE_WINDOW_HOURS``), for callers that pass none."""
    from cdr_platform.settings import load_settings  # settings sit above the lake; read at call time

    return timedelta(hours=load_settings().dedupe_window_hours)


def event_time_ranges(times: Iterable[datetime], window: timedelta) -> list[tuple[datetime, datetime]]:
    """The slices of event time a batch can collide with: each time +/- ``window``, overlaps merged.

    A live batch gives one short range; a batch with a few late events adds one range per late
    cluster instead of stretching one range over everything in between.
    """
    ranges: list[tuple[datetime, datetime]] = []
    for moment in sorted(times):
        low, high = moment - window, moment + window
        if ranges and low <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], high)
        else:
            ranges.append((low, high))
    return ranges


def _insert_new_events(
    con: duckdb.DuckDBPyConnection,
    table: str,
    incoming: _Incoming,
    window: timedelta,
    source: str,
    now: datetime,
) -> int:
    """Insert the rows whose event_id is not in the table within the dedupe window; returns how many.

    The check is keyed by ``event_id`` and reads only rows whose ``occurred_at`` is within ``window``
    of an incoming event's: a retried producer may stamp a new ``occurred_at`` on the same business
    fact, and it lands once as long as the two times are at most ``window`` apart. Each range is its
    own scan with constant bounds, so DuckLake skips every data file (and day partition) whose
    ``occurred_at`` statistics fall outside it: the cost depends on the window, not on the history.
    """
    if incoming.frame.empty:
        return 0
    ranges = event_time_ranges(incoming.times, window)
    seen = " UNION ALL ".join(
        f"SELECT event_id, occurred_at FROM {table} WHERE occurred_at BETWEEN ? AND ?" for _ in ranges
    )
    con.register("incoming", incoming.frame)
    try:
        inserted = con.execute(
            f"""
            INSERT INTO {table}
            SELECT CAST(i.event_id AS UUID), i.event_type, i.schema_version, i.occurred_at, i.member_id,
                   i.correlation_id, i.producer, CAST(i.payload AS JSON), CAST(? AS VARCHAR),
                   i.source_position, CAST(? AS TIMESTAMPTZ)
            FROM incoming i
            ANTI JOIN ({seen}) t ON t.event_id = CAST(i.event_id AS UUID)
                AND t.occurred_at BETWEEN CAST(i.occurred_at AS TIMESTAMPTZ) - ?
                                      AND CAST(i.occurred_at AS TIMESTAMPTZ) + ?
            """,
            [source, now, *(bound for pair in ranges for bound in pair), window, window],
        ).fetchone()
    finally:
        con.unregister("incoming")
    return int(inserted[0]) if inserted else 0


def _insert_dead_letters(
    con: duckdb.DuckDBPyConnection, source: str, rejected: list[tuple[Rejection, SourceRecord]], now: datetime
) -> int:
    if not rejected:
        return 0
    frame = pd.DataFrame(
        [
            (
                str(uuid.uuid5(DEAD_LETTER_NAMESPACE, f"{source}:{record.position}")),
                source,
                record.position,
                record.data,
                rejection.reason.value,
                rejection.detail,
                rejection.event_type,
                now,
            )
            for rejection, record in rejected
        ],
        columns=[
            "dead_letter_id",
            "source",
            "source_position",
            "raw_data",
            "reason",
            "detail",
            "event_type",
            "now",
        ],
    ).drop_duplicates("dead_letter_id")
    con.register("rejected", frame)
    try:
        inserted = con.execute(
            """
            INSERT INTO raw.dead_letter
            SELECT CAST(dead_letter_id AS UUID), source, source_position, CAST(raw_data AS BLOB), reason,
                   detail, event_type, now, NULL, NULL
            FROM rejected
            WHERE CAST(dead_letter_id AS UUID) NOT IN (SELECT dead_letter_id FROM raw.dead_letter)
            """
        ).fetchone()
    finally:
        con.unregister("rejected")
    return int(inserted[0]) if inserted else 0


def _save_checkpoints(con: duckdb.DuckDBPyConnection, batch: LandingBatch, now: datetime) -> None:
    """Append each shard's new position: never a DELETE, which would make every other shard group's
    commit conflict (DuckLake's conflicts are per table); ``load_shard_checkpoints`` reads the latest
    row per shard, and lake maintenance prunes the superseded ones. Each new row carries the shard's
    latest heartbeat time so far (``published_through``, the later of the row's and the stored one),
    so the latest row alone holds it whatever the caller passed."""
    for checkpoint in batch.shard_checkpoints:
        con.execute(
            """
            INSERT INTO meta.kinesis_checkpoints
                (stream_name, shard_id, sequence_number, shard_ended, updated_at, published_through)
            SELECT ?, ?, ?, ?, ?, greatest(CAST(? AS TIMESTAMPTZ), (
                SELECT max(published_through) FROM meta.kinesis_checkpoints
                WHERE stream_name = ? AND shard_id = ?
            ))
            """,
            [
                checkpoint.stream_name,
                checkpoint.shard_id,
                checkpoint.sequence_number,
                checkpoint.shard_ended,
                now,
                checkpoint.published_through,
                checkpoint.stream_name,
                checkpoint.shard_id,
            ],
        )
    if batch.eventstore_checkpoint is not None:
        save_eventstore_checkpoint(con, batch.eventstore_checkpoint, now)


def save_eventstore_checkpoint(
    con: duckdb.DuckDBPyConnection, checkpoint: EventStoreCheckpoint, now: datetime
) -> None:
    """Replace a consumer's position (inside the caller's transaction)."""
    con.execute("DELETE FROM meta.eventstore_checkpoints WHERE consumer = ?", [checkpoint.consumer])
    con.execute(
        "INSERT INTO meta.eventstore_checkpoints VALUES (?, ?, ?)",
        [checkpoint.consumer, checkpoint.commit_position, now],
    )


def insert_event_frames(
    con: duckdb.DuckDBPyConnection,
    events: list[tuple[EventRow, SourceRecord]],
    source: str,
    now: datetime,
    dedupe_window: timedelta | None = None,
) -> int:
    """Insert new events' rows into their raw tables (inside the caller's transaction); returns how many."""
    window = configured_dedupe_window() if dedupe_window is None else dedupe_window
    landed = 0
    for category, table in RAW_TABLES.items():
        chosen = [(e, r) for e, r in events if (e.event_type in MEMBER_EVENT_TYPES) == (category == "member")]
        if chosen:
            landed += _insert_new_events(con, table, _event_frame(chosen), window, source, now)
    return landed


def land_batch(
    con: duckdb.DuckDBPyConnection,
    batch: LandingBatch,
    *,
    parse: Parser = parse_event,
    dedupe_window: timedelta | None = None,
) -> LandingResult:
    """Parse and land one batch with its checkpoints in a single transaction.

    A record that fails in any way is dead-lettered; only the warehouse itself can fail the batch.
    ``dedupe_window`` (default: the settings' ``dedupe_window_hours``) bounds how far apart in
    ``occurred_at`` two sightings of one event may be and still land once.
    """
    now = datetime.now(UTC)
    window = configured_dedupe_window() if dedupe_window is None else dedupe_window
    usage, member, rejected = split_parsed(batch.records, parse)
    usage_frame, member_frame = _event_frame(usage), _event_frame(member)  # built once, outside retries
    members = {"usage": {row.member_id for row, _ in usage}, "member": {row.member_id for row, _ in member}}

    def work() -> tuple[int, int, int]:
        claim_for_events(con, members, now, dead_letters=bool(rejected))
        landed_usage = _insert_new_events(con, RAW_TABLES["usage"], usage_frame, window, batch.source, now)
        landed_member = _insert_new_events(con, RAW_TABLES["member"], member_frame, window, batch.source, now)
        dead_lettered = _insert_dead_letters(con, batch.source, rejected, now)
        _save_checkpoints(con, batch, now)
        return landed_usage, landed_member, dead_lettered

    landed_usage, landed_member, dead_lettered = in_transaction(con, work, attempts=LANDING_ATTEMPTS)
    return LandingResult(
        received=len(batch.records),
        landed_usage=landed_usage,
        landed_member=landed_member,
        duplicates=len(usage) + len(member) - landed_usage - landed_member,
        dead_lettered=dead_lettered,
    )


def load_shard_checkpoints(con: duckdb.DuckDBPyConnection, stream_name: str) -> dict[str, ShardCheckpoint]:
    """The landed position of every shard of a stream, as committed with the rows (its latest row)."""
    rows = con.execute(
        """
        SELECT shard_id, arg_max_null(sequence_number, updated_at), bool_or(shard_ended),
               max(published_through)
        FROM meta.kinesis_checkpoints WHERE stream_name = ? GROUP BY shard_id
        """,
        [stream_name],
    ).fetchall()
    return {
        shard: ShardCheckpoint(stream_name, shard, seq, ended, published)
        for shard, seq, ended, published in rows
    }


def load_eventstore_checkpoint(con: duckdb.DuckDBPyConnection, consumer: str) -> int | None:
    """The commit position a consumer has landed up to (inclusive), or None if it never landed."""
    row = con.execute(
        "SELECT commit_position FROM meta.eventstore_checkpoints WHERE consumer = ?", [consumer]
    ).fetchone()
    return int(row[0]) if row else None
