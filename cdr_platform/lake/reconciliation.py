"""Reconcile the usage events that arrived through Kinesis with EventStoreDB, per hour of event time.

EventStoreDB is the truth. An index of the usage events it holds (id, event time, commit position)
is kept in the lake and extended incrementally from its own checkpoint. Each hour of event time
then compares the index with ``raw.usage_events``:
- a gap (events EventStoreDB holds that never landed, e.g. records lost between EventStoreDB and
  Kinesis) is repaired by reading exactly those positions back from EventStoreDB and landing them;
- a surplus (events in the lake that EventStoreDB does not hold) is an error, reported with ids.
Only events recorded before ``settled_before`` are judged, so records still in flight through the
relay are not mistaken for losses.

Each run is incremental, so its cost is flat in history: it judges only the hours of event time
touched since its last run (new index entries past its judged position, raw rows ingested after
its judged time, including late events in old hours) plus the last ``lookback`` hours, and reads
only those hours of the index and the raw table (both partitioned by event day). Its own
checkpoint (index position and raw ingestion time judged up to) is kept in the lake's checkpoints
table. ``full=True`` (and the first run) judges every hour, the explicit full re-check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
JUDGED_POSITION = "reconciliation_judged_position"
"""Checkpoint: every settled index entry at or before this commit position has been judged."""
JUDGED_INGESTED = "reconciliation_judged_ingested_us"
"""Checkpoint: raw rows ingested at or before this time (epoch microseconds) have been judged. Sound
because raw-layer writers take turns (the Dagster pool): none commits rows stamped earlier later."""
DEFAULT_LOOKBACK = timedelta(hours=6)
SOURCE = "reconciliation"
# Every bound on commit_position (UBIGINT) is cast to UBIGINT: compared with a BIGINT parameter, the
# column is cast instead and DuckLake reads every file of the index, not only those past the bound.


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
        # a short page is not the end: a filtered read may stop early; only an empty page is


def _append_index(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, position: int) -> None:
    con.register("indexed", frame)
    try:
        con.execute(
            "INSERT INTO meta.eventstore_usage_index SELECT CAST(n.event_id AS UUID), n.event_type, "
            "n.occurred_at, n.commit_position, n.recorded_at FROM indexed n ANTI JOIN ("
            "SELECT commit_position FROM meta.eventstore_usage_index "
            "WHERE commit_position >= CAST(? AS UBIGINT)) i ON i.commit_position = n.commit_position",
            [int(frame["commit_position"].min())],  # positions only grow: older entries cannot match
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


def _hour_ranges(hours: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Contiguous [start, end) ranges covering these hours."""
    ranges: list[tuple[datetime, datetime]] = []
    for hour in sorted(set(hours)):
        if ranges and hour <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], hour + timedelta(hours=1)))
        else:
            ranges.append((hour, hour + timedelta(hours=1)))
    return ranges


def _scan(table: str, columns: str, ranges: list[tuple[datetime, datetime]] | None) -> tuple[str, list]:
    """SQL reading ``table`` within the hour ranges (one scan per range, so DuckLake prunes files)."""
    if ranges is None:
        return f"SELECT {columns} FROM {table}", []
    if not ranges:
        return f"SELECT {columns} FROM {table} WHERE false", []
    sql = " UNION ALL ".join(
        f"SELECT {columns} FROM {table} WHERE occurred_at >= ? AND occurred_at < ?" for _ in ranges
    )
    return sql, [bound for pair in ranges for bound in pair]


def changed_hours(
    con: duckdb.DuckDBPyConnection, settled_before: datetime, lookback: timedelta
) -> list[datetime] | None:
    """The hours to judge since the last run, or None when there is no last run (judge everything)."""
    position = load_eventstore_checkpoint(con, JUDGED_POSITION)
    ingested_us = load_eventstore_checkpoint(con, JUDGED_INGESTED)
    if position is None or ingested_us is None:
        return None
    ingested = datetime.fromtimestamp(ingested_us / 1e6, UTC)
    rows = con.execute(
        """
        SELECT DISTINCT date_trunc('hour', occurred_at) FROM meta.eventstore_usage_index
        WHERE commit_position > CAST(? AS UBIGINT) AND occurred_at IS NOT NULL
        UNION
        SELECT DISTINCT date_trunc('hour', occurred_at) FROM raw.usage_events WHERE ingested_at > ?
        """,
        [position, ingested],
    ).fetchall()
    hours = [row[0] for row in rows]
    start = (settled_before - lookback).replace(minute=0, second=0, microsecond=0)
    hours += [start + timedelta(hours=h) for h in range(int(lookback / timedelta(hours=1)) + 2)]
    return hours


def _save_judged(con: duckdb.DuckDBPyConnection, settled_before: datetime) -> None:
    """Move the checkpoint to the last index entry before the first unsettled one, and to the newest
    raw ingestion time (read past the previous one only, so the scan stays small)."""
    row = con.execute(
        """
        SELECT coalesce(min(commit_position) FILTER (WHERE recorded_at >= ?) - 1, max(commit_position))
        FROM meta.eventstore_usage_index WHERE commit_position > CAST(coalesce(?, 0) AS UBIGINT)
        """,
        [settled_before, load_eventstore_checkpoint(con, JUDGED_POSITION)],
    ).fetchone()
    now = datetime.now(UTC)
    if row and row[0] is not None:
        save_eventstore_checkpoint(con, EventStoreCheckpoint(JUDGED_POSITION, int(row[0])), now)
    elif load_eventstore_checkpoint(con, JUDGED_POSITION) is None:
        save_eventstore_checkpoint(con, EventStoreCheckpoint(JUDGED_POSITION, 0), now)
    previous = load_eventstore_checkpoint(con, JUDGED_INGESTED) or 0
    newest = con.execute(
        "SELECT max(ingested_at) FROM raw.usage_events WHERE ingested_at > ?",
        [datetime.fromtimestamp(previous / 1e6, UTC)],
    ).fetchone()[0]
    if newest is not None:
        micros = int(newest.timestamp() * 1e6)
        save_eventstore_checkpoint(con, EventStoreCheckpoint(JUDGED_INGESTED, micros), now)
    elif load_eventstore_checkpoint(con, JUDGED_INGESTED) is None:
        save_eventstore_checkpoint(con, EventStoreCheckpoint(JUDGED_INGESTED, 0), now)


def reconcile_usage_events(
    con: duckdb.DuckDBPyConnection,
    client: EventStoreDBClient,
    settled_before: datetime,
    *,
    repair: bool = True,
    full: bool = False,
    lookback: timedelta = DEFAULT_LOOKBACK,
    log: Callable[[str], None] = lambda _: None,
) -> ReconciliationReport:
    """Compare the changed hours of event time (every hour if ``full``) with EventStoreDB; repair gaps;
    report surpluses. The judged checkpoint moves only after the run judged (and repaired) them."""
    report = ReconciliationReport(indexed=refresh_index(con, client))
    hours = None if full else changed_hours(con, settled_before, lookback)
    ranges = None if hours is None else _hour_ranges(hours)
    index_sql, index_params = _scan(
        "meta.eventstore_usage_index", "event_id, occurred_at, commit_position, recorded_at", ranges
    )
    raw_sql, raw_params = _scan("raw.usage_events", "event_id, occurred_at", ranges)
    # An index entry without an event time (unparseable in EventStoreDB) belongs to no hour: new ones
    # are judged by position, all of them on a full run.
    unparseable_after = 0 if hours is None else load_eventstore_checkpoint(con, JUDGED_POSITION) or 0
    settled = "(recorded_at IS NULL OR recorded_at < ?)"
    hours_rows = con.execute(
        f"""
        WITH judged AS (
            {index_sql}
            UNION ALL
            SELECT event_id, occurred_at, commit_position, recorded_at FROM meta.eventstore_usage_index
            WHERE occurred_at IS NULL AND commit_position > CAST(? AS UBIGINT)
        ), landed AS ({raw_sql})
        SELECT date_trunc('hour', i.occurred_at) AS hour, count(*) AS in_eventstore,
               count(u.event_id) AS landed,
               list(i.event_id::VARCHAR ORDER BY i.commit_position)
                   FILTER (WHERE u.event_id IS NULL) AS missing_ids,
               list(i.commit_position ORDER BY i.commit_position)
                   FILTER (WHERE u.event_id IS NULL) AS missing_pos
        FROM judged i
        LEFT JOIN landed u USING (event_id)
        WHERE {settled}
        GROUP BY 1 ORDER BY 1
        """,
        [*index_params, unparseable_after, *raw_params, settled_before],
    ).fetchall()
    # A surplus is a landed row EventStoreDB does not hold; its index entry, if any, carries the same
    # event time (same bytes), so the index is read over the same hours.
    surplus = con.execute(
        f"""
        SELECT u.event_id::VARCHAR FROM ({raw_sql}) u
        ANTI JOIN ({index_sql}) i USING (event_id)
        ORDER BY u.occurred_at
        """,
        [*raw_params, *index_params],
    ).fetchall()
    report.surplus_event_ids = [row[0] for row in surplus]
    missing_positions: list[int] = []
    for hour, in_eventstore, landed, missing_ids, missing_pos in hours_rows:
        missing_ids, missing_pos = missing_ids or [], missing_pos or []
        report.missing_event_ids += missing_ids
        missing_positions += [int(p) for p in missing_pos]
        report.hours.append(HourResult(hour, in_eventstore, landed, len(missing_ids), 0))
    if repair and missing_positions:
        records = _read_exact(client, missing_positions)
        result = land_batch(con, LandingBatch(SOURCE, records))
        report.repaired = result.landed
        log(f"repaired {result.landed} of {len(missing_positions)} missing events from EventStoreDB")
        gap_hours = [h.hour for h in report.hours if h.missing and h.hour is not None]
        repaired_by_hour = _missing_now_landed(con, report.missing_event_ids, _hour_ranges(gap_hours))
        report.hours = [
            HourResult(h.hour, h.in_eventstore, h.landed_before, h.missing, repaired_by_hour.get(h.hour, 0))
            for h in report.hours
        ]
    if report.ok:  # hours with an unrepaired gap or a surplus stay to be judged again
        in_transaction(con, partial(_save_judged, con, settled_before))
    return report


def _missing_now_landed(
    con: duckdb.DuckDBPyConnection, event_ids: list[str], ranges: list[tuple[datetime, datetime]]
) -> dict[datetime, int]:
    """How many of the missing events are in the raw table now, per hour; reads only their hours."""
    raw_sql, raw_params = _scan("raw.usage_events", "event_id, occurred_at", ranges)
    frame = pd.DataFrame({"event_id": event_ids})
    con.register("was_missing", frame)
    try:
        rows = con.execute(
            f"""
            SELECT date_trunc('hour', u.occurred_at), count(*) FROM ({raw_sql}) u
            JOIN was_missing m ON u.event_id = CAST(m.event_id AS UUID) GROUP BY 1
            """,
            raw_params,
        ).fetchall()
    finally:
        con.unregister("was_missing")
    return dict(rows)
