"""Rebuild the raw layer from EventStoreDB, the source of truth: all of it, or a position or time range.

Used after a downstream failure (records lost between EventStoreDB and Kinesis, a lake restored
from an old backup) or after a parsing fix. Guarantees:
- Idempotent: events land through the same ``event_id`` dedupe as every other path, so running a
  replay twice, or over a range that already landed, changes nothing.
- Resumable: each page commits with the replay's own checkpoint (``replay:<name>``), so a replay
  killed halfway continues from its last commit when started again with the same name.
- It ends by re-processing the dead letter, so records rejected by an old parser land too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime

import duckdb
from esdbclient import EventStoreDBClient

from cdr_platform.errors import PlatformError
from cdr_platform.events import MEMBER_EVENT_TYPES, USAGE_EVENT_TYPES, Rejection
from cdr_platform.lake.connection import in_transaction
from cdr_platform.lake.dead_letter import ReprocessResult, reprocess_dead_letter
from cdr_platform.lake.landing import (
    EventStoreCheckpoint,
    LandingBatch,
    SourceRecord,
    land_batch,
    load_eventstore_checkpoint,
    parse_record,
)
from cdr_platform.sources.eventstore_reader import read_all_after

SOURCE = "replay"
ALL_BUSINESS_TYPES = tuple(sorted(USAGE_EVENT_TYPES | MEMBER_EVENT_TYPES))


@dataclass(frozen=True)
class ReplayRange:
    """What to replay: $all positions (from exclusive, to inclusive) and/or an event-time window."""

    from_position: int | None = None
    to_position: int | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    event_types: tuple[str, ...] = ALL_BUSINESS_TYPES

    def __post_init__(self) -> None:
        for name in ("occurred_from", "occurred_to"):
            bound = getattr(self, name)
            if bound is not None and bound.tzinfo is None:
                raise ValueError(f"{name} must carry a timezone, got {bound.isoformat()}")

    def keeps(self, data: bytes) -> bool:
        """Whether an event falls in the time window (unparseable ones are kept, for the dead letter)."""
        if self.occurred_from is None and self.occurred_to is None:
            return True
        parsed = parse_record(data)
        if isinstance(parsed, Rejection):
            return True
        after_start = self.occurred_from is None or parsed.occurred_at >= self.occurred_from
        return after_start and (self.occurred_to is None or parsed.occurred_at < self.occurred_to)


class ReplayRangeError(PlatformError):
    """A replay name was resumed with another range than it started with."""


def _describe(replay_range: ReplayRange) -> str:
    fields = asdict(replay_range)
    return json.dumps(
        {k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()}, sort_keys=True
    )


def _claim_name(con: duckdb.DuckDBPyConnection, name: str, replay_range: ReplayRange) -> None:
    """Record the range a replay name stands for; refuse to resume that name with another one."""
    wanted = _describe(replay_range)

    def claim() -> None:
        row = con.execute("SELECT replay_range FROM meta.replay_ranges WHERE name = ?", [name]).fetchone()
        if row is None:
            con.execute("INSERT INTO meta.replay_ranges VALUES (?, ?)", [name, wanted])
        elif row[0] != wanted:
            raise ReplayRangeError(
                f"replay {name!r} was started with range {row[0]}; resume it with the same range, "
                "or give the new range a new name"
            )

    in_transaction(con, claim)


@dataclass
class ReplayReport:
    name: str
    pages: int = 0
    read: int = 0
    landed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    resumed_from: int | None = None
    position: int | None = None
    seconds: float = 0.0
    dead_letter: ReprocessResult | None = None

    @property
    def events_per_second(self) -> float:
        return self.read / self.seconds if self.seconds else 0.0


def replay_consumer(name: str) -> str:
    return f"replay:{name}"


def replay_from_eventstore(
    con: duckdb.DuckDBPyConnection,
    client: EventStoreDBClient,
    name: str,
    replay_range: ReplayRange = ReplayRange(),
    *,
    page_size: int = 20_000,
    before_commit: Callable[[LandingBatch], None] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> ReplayReport:
    """Replay the range into the raw layer, page by page, resuming from the replay's checkpoint."""
    _claim_name(con, name, replay_range)
    report = ReplayReport(name)
    started = time.monotonic()
    consumer = replay_consumer(name)
    position = load_eventstore_checkpoint(con, consumer)
    report.resumed_from = position
    if position is None:
        position = replay_range.from_position
    while True:
        page = [
            (e.data, int(e.commit_position or 0))
            for e in read_all_after(client, position, replay_range.event_types, page_size)
        ]
        if not page:
            break
        in_range = [e for e in page if replay_range.to_position is None or e[1] <= replay_range.to_position]
        records = [SourceRecord(data, str(pos)) for data, pos in in_range if replay_range.keeps(data)]
        if in_range:
            position = in_range[-1][1]
            batch = LandingBatch(
                SOURCE, records, eventstore_checkpoint=EventStoreCheckpoint(consumer, position)
            )
            if before_commit is not None:
                before_commit(batch)
            result = land_batch(con, batch)
            report.pages += 1
            report.read += len(in_range)
            report.landed += result.landed
            report.duplicates += result.duplicates
            report.dead_lettered += result.dead_lettered
            elapsed = time.monotonic() - started
            log(
                f"replay {name}: {report.read} events read, {report.landed} new, position {position}, "
                f"{report.read / elapsed if elapsed else 0:,.0f} events/s"
            )
        if len(in_range) < len(page) or len(page) < page_size:
            break
    report.position = position
    report.dead_letter = reprocess_dead_letter(con)
    report.seconds = time.monotonic() - started
    return report
