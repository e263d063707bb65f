"""The raw layer's tables and the landing checkpoints, all inside the lake.

Checkpoints live beside the rows they describe so that one DuckLake transaction commits both:
the warehouse, not a sensor cursor, is the authority on what has landed. DuckLake has no unique
constraints, so uniqueness of ``event_id`` is kept by the landing code (anti-join on insert,
with all writers to the raw layer serialised through one Dagster pool).
"""

from __future__ import annotations

import duckdb

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
        updated_at TIMESTAMPTZ NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS meta.eventstore_usage_index (
        event_id UUID NOT NULL,
        event_type VARCHAR NOT NULL,
        occurred_at TIMESTAMPTZ,
        commit_position UBIGINT NOT NULL,
        recorded_at TIMESTAMPTZ
    )""",
    "CREATE TABLE IF NOT EXISTS meta.raw_writer (claimed_at TIMESTAMPTZ NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta.replay_ranges (name VARCHAR NOT NULL, replay_range VARCHAR NOT NULL)",
    """CREATE TABLE IF NOT EXISTS meta.eventstore_checkpoints (
        consumer VARCHAR NOT NULL,
        commit_position UBIGINT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
    )""",
]

RAW_TABLES = {"usage": "raw.usage_events", "member": "raw.member_events"}


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw and meta tables if missing (idempotent; safe from several processes)."""

    def create() -> None:
        for statement in DDL:
            con.execute(statement)

    in_transaction(con, create)
