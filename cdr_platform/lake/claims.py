"""Claims that make two raw-layer transactions conflict exactly when they could land the same event.

DuckLake has no unique keys and merges concurrent INSERTs into one table without complaint, so the
anti-join of landing is exactly-once only if two transactions that could insert the same
``event_id`` cannot both commit. DuckLake refuses a commit that inserts into (or deletes from) a
table another transaction deleted from since it began (found by experiment on DuckLake 1.5.5:
the conflict is per table, whatever rows), so a claim is an ``UPDATE`` of a one-row table, and the
loser of a race re-runs in a fresh transaction (``in_transaction``) whose anti-join sees the
winner's rows.

- **SQLite catalog** (one writer at a time anyway: the catalog serialises commits and Dagster's pool
  ``lake_writer`` serialises runs): every transaction claims the single ``meta.raw_writer`` row.
- **Postgres catalog**: one claim table per raw table and key range, ``meta.raw_claim_<usage|member>_<k>``.
  The range of an event is the top bits of ``md5(member_id)``, the 128-bit hash Kinesis maps the
  partition key (the member id) to shards with, cut into ``CLAIM_RANGES`` equal ranges. Two
  sightings of one event carry the same member id (``event_id`` is UUIDv5 of a business key of that
  member) and type, so they claim the same table whatever brought them: a Kinesis shard, a child
  shard after a reshard, EventStoreDB, a replay or reconciliation. Shards of an evenly split stream
  of up to ``CLAIM_RANGES`` shards cover whole ranges, so workers owning disjoint shards claim
  disjoint tables and commit side by side; an uneven split or a worker on another path shares
  a range now and then, and one of the two re-runs. Dead letters (keyed by source and position)
  claim ``meta.raw_claim_dead_letter``: only batches with a rejected record take it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

import duckdb

CLAIM_RANGES = 8
"""Key ranges per raw table: evenly split streams of 1, 2, 4 or 8 shards align with them.

Each range a transaction claims costs it about 20 ms of commit work on the Postgres catalog
(measured), so more ranges would tax every batch for alignment with streams of more shards."""

CATEGORIES = ("usage", "member")
DEAD_LETTER_CLAIM = "meta.raw_claim_dead_letter"
SINGLE_WRITER_CLAIM = "meta.raw_writer"


def claim_table(category: str, key_range: int) -> str:
    return f"meta.raw_claim_{category}_{key_range}"


CLAIM_TABLES = [SINGLE_WRITER_CLAIM, DEAD_LETTER_CLAIM] + [
    claim_table(category, k) for category in CATEGORIES for k in range(CLAIM_RANGES)
]


def claim_ddl() -> list[str]:
    """Create every claim table with its one row (idempotent; a second seed row from a race is harmless,
    since a claim updates all rows of its table)."""
    statements = []
    for table in CLAIM_TABLES:
        statements.append(f"CREATE TABLE IF NOT EXISTS {table} (claimed_at TIMESTAMPTZ NOT NULL)")
        statements.append(
            f"INSERT INTO {table} SELECT TIMESTAMPTZ '1970-01-01 00:00:00+00' "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table})"
        )
    return statements


def key_range(member_id: str) -> int:
    """The claim range of a member: the top bits of md5(member id), as Kinesis hashes a partition key."""
    digest = int.from_bytes(hashlib.md5(member_id.encode("utf-8"), usedforsecurity=False).digest(), "big")
    return digest * CLAIM_RANGES >> 128


def ranged_claims(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the lake's catalog takes concurrent writers (Postgres), so claims are per key range."""
    row = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database() AND type = 'ducklake'"
    ).fetchone()
    return bool(row and str(row[0]).startswith("postgres:"))


def claim_for_events(
    con: duckdb.DuckDBPyConnection,
    members: dict[str, Iterable[str]],
    now: datetime,
    *,
    dead_letters: bool = False,
) -> None:
    """Claim, inside the caller's transaction, what inserting these events (member ids per category,
    ``usage`` or ``member``) and, with ``dead_letters``, dead letters can collide with."""
    if not ranged_claims(con):
        _claim(con, [SINGLE_WRITER_CLAIM], now)
        return
    tables = sorted(
        {claim_table(category, key_range(m)) for category, ids in members.items() for m in set(ids)}
    )
    _claim(con, tables + ([DEAD_LETTER_CLAIM] if dead_letters else []), now)


def claim_everything(con: duckdb.DuckDBPyConnection, now: datetime) -> None:
    """Claim every range (a writer that may touch any event, such as dead-letter re-processing)."""
    _claim(con, [SINGLE_WRITER_CLAIM] if not ranged_claims(con) else CLAIM_TABLES[1:], now)


def _claim(con: duckdb.DuckDBPyConnection, tables: Iterable[str], now: datetime) -> None:
    for table in tables:
        con.execute(f"UPDATE {table} SET claimed_at = ?", [now])
