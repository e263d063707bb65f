"""The raw layer's tables and the landing checkpoints, all inside the lake.

Checkpoints live beside the rows they describe so that one DuckLake transaction commits both:
the warehouse, not a sensor cursor, is the authority on what has landed. DuckLake has no unique
constraints, so uniqueness of ``event_id`` is kept by the landing code (anti-join on insert,
with the claims of ``lake/claims.py`` making colliding writers conflict at commit).
"""

from __future__ import annotations

import duckdb

from cdr_platform.lake.claims import claim_ddl
from cdr_platform.lake.connection import in_transaction

RAW_EVENT_COLUMNS = """
    event_id UUID NOT NULL,
    event_type VARCHAR NOT NULL,
    schema_version INTEGER NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    member_id VARCHAR NOT NULL,
    correlation_id VARCHAR NOT NULL,
    producer VARCHAR NOT NULL,
    payload JSON NOT NULL,
    source VARCHAR NOT NULL,
    source_position VARCHAR NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL
"""

DDL = [
    "CREATE SCHEMA IF NOT EXISTS raw",
    "CREATE SCHEMA IF NOT EXISTS meta",
    f"CREATE TABLE IF NOT EXISTS raw.usage_events ({RAW_EVENT_COLUMNS})",
    f"CREATE TABLE IF NOT EXISTS raw.member_events ({RAW_EVENT_COLUMNS})",
    """CREATE TABLE IF NOT EXISTS raw.dead_letter (
        dead_letter_id UUID NOT NULL,
        source VARCHAR NOT NULL,
        source_position VARCHAR NOT NULL,
        raw_data BLOB NOT NULL,
        reason VARCHAR NOT NULL,
        detail VARCHAR NOT NULL,
        event_type VARCHAR,
        first_seen_at TIMESTAMPTZ NOT NULL,
        resolved_at TIMESTAMPTZ,
        resolved_event_id UUID
    )""",
    """CREATE TABLE IF NOT EXISTS meta.kinesis_checkpoints (
        stream_name VARCHAR NOT NULL,
        shard_id VARCHAR NOT NULL,
        sequence_number VARCHAR,
        shard_ended BOOLEAN NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        published_through TIMESTAMPTZ
    )""",
    """CREATE TABLE IF NOT EXISTS meta.eventstore_usage_index (
        event_id UUID NOT NULL,
        event_type VARCHAR NOT NULL,
        occurred_at TIMESTAMPTZ,
        commit_position UBIGINT NOT NULL,
        recorded_at TIMESTAMPTZ
    )""",
    "CREATE TABLE IF NOT EXISTS meta.replay_ranges (name VARCHAR NOT NULL, replay_range VARCHAR NOT NULL)",
    """CREATE TABLE IF NOT EXISTS meta.eventstore_checkpoints (
        consumer VARCHAR NOT NULL,
        commit_position UBIGINT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
    )""",
    *claim_ddl(),
]

ADDED_COLUMNS = {"meta.kinesis_checkpoints": {"published_through": "TIMESTAMPTZ"}}
"""Columns added after a table's first release: ``ensure_schema`` adds them to an older lake."""

RAW_TABLES = {"usage": "raw.usage_events", "member": "raw.member_events"}

PARTITIONED_BY_EVENT_DAY = {
    "raw.usage_events": "occurred_at",
    "raw.member_events": "occurred_at",
    "meta.eventstore_usage_index": "occurred_at",
}
"""Tables partitioned by UTC day of event time, so landing's dedupe window and reconciliation's hours
read a few day folders (and files whose min/max event time overlaps them), never the whole history."""


def _partition_clause(column: str) -> str:
    return f"year({column}), month({column}), day({column})"


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw and meta tables if missing, and partition the event tables by event day.

    Idempotent and safe from several processes. On a lake created before a column of ``ADDED_COLUMNS``
    this adds it (a no-op otherwise: no new snapshot). On a lake created before partitioning this sets the
    partitioning (DuckLake applies it to data files written from then on; older files keep their
    layout and are still skipped by their min/max statistics).
    """

    def create() -> None:
        for statement in DDL:
            con.execute(statement)
        for table, columns in ADDED_COLUMNS.items():
            for column, column_type in columns.items():
                con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {column_type}")
        for table, column in PARTITIONED_BY_EVENT_DAY.items():
            if not _is_partitioned(con, table):
                con.execute(f"ALTER TABLE {table} SET PARTITIONED BY ({_partition_clause(column)})")

    in_transaction(con, create)


def _is_partitioned(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether DuckLake's catalog holds a partitioning for ``table`` (schema.table)."""
    schema, name = table.split(".")
    database = con.execute("SELECT current_database()").fetchone()[0]
    row = con.execute(
        f"""
        SELECT count(*) FROM "__ducklake_metadata_{database}".ducklake_partition_info p
        JOIN "__ducklake_metadata_{database}".ducklake_table t USING (table_id)
        JOIN "__ducklake_metadata_{database}".ducklake_schema s USING (schema_id)
        WHERE t.table_name = ? AND s.schema_name = ? AND t.end_snapshot IS NULL
          AND s.end_snapshot IS NULL AND p.end_snapshot IS NULL
        """,
        [name, schema],
    ).fetchone()
    return bool(row and row[0])
