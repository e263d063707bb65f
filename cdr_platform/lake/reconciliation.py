"""Reconcile the usage events that arrived through Kinesis with EventStoreDB, per hour of event time.

EventStoreDB is the truth. An index of the usage events it holds (id, event time, commit position)
is kept in the lake and extended incrementally from its own checkpoint. Each hour of event time
then compares the index with ``raw.usage_events``:
- a gap (events EventStoreDB holds that never landed, e.g. records lost between EventStoreDB and
  Kinesis) is repaired by reading exactly those positions back from EventStoreDB and landing them;
- a surplus (events in the lake that EventStoreDB does not hold) is an error, reported with ids.
Only events recorded before ``settled_before`` are judged, so records still in flight through the
relay are not mistaken for losses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

import duckdb
import pandas as pd
from esdbclient import EventStoreDBClient
from esdbclient.exceptions import EventStoreDBClientException

from cdr_platform.events import USAGE_EVENT_TYPES, Rejection
from cdr_platform.lake.connection import in_transaction
from cdr_platform.lake.landing import (
    EventStoreCheckpoint,
    LandingBatch,
    SourceRecord,
    land_batch,
    load_eventstore_checkpoint,
    parse_record,
    save_eventstore_checkpoint,
)
from cdr_platform.sources.eventstore_reader import EventStoreReadError, read_all_after, type_filter

INDEX_CONSUMER = "reconciliation_index"
SOURCE = "reconciliation"


@dataclass(frozen=True)
class HourResult:
    hour: datetime
    in_eventstore: int
    landed_before: int
    missing: int
    repaired: int


@dataclass
class ReconciliationReport:
    indexed: int = 0
    hours: list[HourResult] = field(default_factory=list)
    missing_event_ids: list[str] = field(default_factory=list)
    repaired: int = 0
    surplus_event_ids: list[str] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return len(self.missing_event_ids)

    @property
    def ok(self) -> bool:
        return not self.surplus_event_ids and self.repaired == self.missing


def refresh_index(con: duckdb.DuckDBPyConnection, client: EventStoreDBClient, page_size: int = 50_000) -> int:
    """Extend the index with usage events appended since its checkpoint; returns how many were added."""
    position = load_eventstore_checkpoint(con, INDEX_CONSUMER)
    added = 0
    while True:
        events = read_all_after(client, position, USAGE_EVENT_TYPES, page_size)
        if not events:
            return added
        rows = []
        for event in events:
            parsed = parse_record(event.data)
            # An event EventStoreDB holds but that does not parse is indexed by its stored id, without
            # an event time: it shows up as missing in the "unparseable" bucket, never silently.
            event_id, occurred = (
                (str(event.id), None)
                if isinstance(parsed, Rejection)
                else (parsed.event_id, parsed.occurred_at)
            )
            rows.append((event_id, event.type, occurred, event.commit_position, event.recorded_at))
        frame = pd.DataFrame(
            rows, columns=["event_id", "event_type", "occurred_at", "commit_position", "recorded_at"]
        )
        position = int(events[-1].commit_position)
        in_transaction(con, partial(_append_index, con, frame, position))
        added += len(rows)
        if len(events) < page_size:
            return added


def _append_index(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, position: int) -> None:
    con.register("indexed", frame)
    try:
        con.execute(
            "INSERT INTO meta.eventstore_usage_index SELECT CAST(n.event_id AS UUID), n.event_type, "
            "n.occurred_at, n.commit_position, n.recorded_at FROM indexed n "
            "ANTI JOIN meta.eventstore_usage_index i ON i.commit_position = n.commit_position"
        )
    finally:
        con.unregister("indexed")
    save_eventstore_checkpoint(con, EventStoreCheckpoint(INDEX_CONSUMER, position), datetime.now(UTC))


def _read_exact(client: EventStoreDBClient, positions: list[int]) -> list[SourceRecord]:
    """The events at exactly these commit positions (reading $all forwards includes the start)."""
    records = []
    for position in positions:
        try:
            found = list(
                client.read_all(
                    commit_position=position, filter_include=type_filter(USAGE_EVENT_TYPES), limit=1
                )
            )
        except EventStoreDBClientException as exc:
            raise EventStoreReadError(
                f"reading the missing event at position {position} failed: {exc!r}"
            ) from exc
        records += [SourceRecord(e.data, str(position)) for e in found if e.commit_position == position]
    return records


def reconcile_usage_events(
    con: duckdb.DuckDBPyConnection,
    client: EventStoreDBClient,
    settled_before: datetime,
    *,
    repair: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> ReconciliationReport:
    """Compare every hour of event time with EventStoreDB; repair gaps; report surpluses."""
    report = ReconciliationReport(indexed=refresh_index(con, client))
    settled = "(recorded_at IS NULL OR recorded_at < ?)"
    hours = con.execute(
        f"""
        SELECT date_trunc('hour', i.occurred_at) AS hour, count(*) AS in_eventstore,
               count(u.event_id) AS landed,
               list(i.event_id::VARCHAR ORDER BY i.commit_position)
                   FILTER (WHERE u.event_id IS NULL) AS missing_ids,
               list(i.commit_position ORDER BY i.commit_position)
                   FILTER (WHERE u.event_id IS NULL) AS missing_pos
        FROM meta.eventstore_usage_index i
        LEFT JOIN raw.usage_events u USING (event_id)
        WHERE {settled}
        GROUP BY 1 ORDER BY 1
        """,
        [settled_before],
    ).fetchall()
    surplus = con.execute(
        """
        SELECT u.event_id::VARCHAR FROM raw.usage_events u
        ANTI JOIN meta.eventstore_usage_index i USING (event_id)
        ORDER BY u.occurred_at
        """
    ).fetchall()
    report.surplus_event_ids = [row[0] for row in surplus]
    missing_positions: list[int] = []
    for hour, in_eventstore, landed, missing_ids, missing_pos in hours:
        missing_ids, missing_pos = missing_ids or [], missing_pos or []
        report.missing_event_ids += missing_ids
        missing_positions += [int(p) for p in missing_pos]
        report.hours.append(HourResult(hour, in_eventstore, landed, len(missing_ids), 0))
    if repair and missing_positions:
        records = _read_exact(client, missing_positions)
        result = land_batch(con, LandingBatch(SOURCE, records))
        report.repaired = result.landed
        log(f"repaired {result.landed} of {len(missing_positions)} missing events from EventStoreDB")
        repaired_by_hour = _missing_now_landed(con, report.missing_event_ids)
        report.hours = [
            HourResult(h.hour, h.in_eventstore, h.landed_before, h.missing, repaired_by_hour.get(h.hour, 0))
            for h in report.hours
        ]
    return report


def _missing_now_landed(con: duckdb.DuckDBPyConnection, event_ids: list[str]) -> dict[datetime, int]:
    frame = pd.DataFrame({"event_id": event_ids})
    con.register("was_missing", frame)
    try:
        rows = con.execute(
            """
            SELECT date_trunc('hour', u.occurred_at), count(*) FROM raw.usage_events u
            JOIN was_missing m ON u.event_id = CAST(m.event_id AS UUID) GROUP BY 1
            """
        ).fetchall()
    finally:
        con.unregister("was_missing")
    return dict(rows)
