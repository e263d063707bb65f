"""Re-process the dead letter after a fix: records that now parse land, the rest stay with their reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pandas as pd

from cdr_platform.events import EventRow, Rejection, parse_event
from cdr_platform.lake.claims import claim_everything
from cdr_platform.lake.connection import in_transaction
from cdr_platform.lake.landing import Parser, SourceRecord, insert_event_frames, parse_record


@dataclass(frozen=True)
class ReprocessResult:
    examined: int
    resolved: int
    landed: int
    still_rejected: int


def reprocess_dead_letter(con: duckdb.DuckDBPyConnection, *, parse: Parser = parse_event) -> ReprocessResult:
    """Parse every unresolved dead letter again; land and mark resolved those that now parse.

    One transaction: a resolved record's event and its ``resolved_at`` commit together, so a
    crash never lands an event whose dead letter still looks open, or the reverse. Parsing goes
    through ``parse_record``, so a record that still makes the parser raise stays open.
    """
    now = datetime.now(UTC)

    def work() -> ReprocessResult:
        claim_everything(con, now)  # its events may belong to any key range
        rows = con.execute(
            "SELECT dead_letter_id, source, source_position, raw_data FROM raw.dead_letter"
            " WHERE resolved_at IS NULL"
        ).fetchall()
        fixed: list[tuple[str, str, EventRow, SourceRecord]] = []
        for dead_letter_id, source, position, data in rows:
            parsed = parse_record(bytes(data), parse)
            if not isinstance(parsed, Rejection):
                fixed.append((str(dead_letter_id), source, parsed, SourceRecord(bytes(data), position)))
        landed = 0
        for source in sorted({f[1] for f in fixed}):
            events = [(event, record) for _, s, event, record in fixed if s == source]
            landed += insert_event_frames(con, events, source, now)
        if fixed:
            resolved = pd.DataFrame(
                [(dl_id, row.event_id) for dl_id, _, row, _ in fixed],
                columns=["dead_letter_id", "event_id"],
            )
            con.register("resolved", resolved)
            con.execute(
                """
                UPDATE raw.dead_letter SET resolved_at = ?, resolved_event_id = CAST(r.event_id AS UUID)
                FROM resolved r WHERE raw.dead_letter.dead_letter_id = CAST(r.dead_letter_id AS UUID)
                """,
                [now],
            )
            con.unregister("resolved")
        return ReprocessResult(len(rows), len(fixed), landed, len(rows) - len(fixed))

    return in_transaction(con, work)
