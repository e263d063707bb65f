"""Lake maintenance: compact small files, expire old snapshots, delete files no snapshot references.

Live landing commits a snapshot, and usually a small data file per touched day partition, every
few seconds; without maintenance the file count and the catalog grow without bound and every
scan opens more files. ``maintain_lake`` keeps them bounded:

0. delete the Kinesis checkpoint rows a newer row of their shard supersedes (landing appends one
   per shard and batch, so that shard groups never delete from one table, see ``_save_checkpoints``);
1. flush rows DuckLake inlined in the catalog (tiny commits) into data files;
2. merge adjacent small files of each table (and partition) into larger ones; rows are unchanged,
   only the current snapshot's file list is;
3. expire snapshots older than the retention: time travel (``AT (TIMESTAMP => ...)``) reaches back
   exactly that far, never further;
4. delete the data files that no remaining snapshot references.

Guarantees: the current snapshot's rows are the same before and after (every later step rewrites
layout only), but for superseded checkpoint rows, which no reader uses. A landing that commits
during a step conflicts with it, and whichever loses re-runs (``in_transaction``). Snapshots are chosen for
expiry here, by their time compared in DuckDB, and passed by id:
``ducklake_expire_snapshots(older_than => ...)`` compares times as text on a SQLite catalog, which
expires every snapshot of the cutoff's day (DuckLake 1.5.5, found by experiment).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from cdr_platform.lake.connection import LAKE_ALIAS, in_transaction


@dataclass(frozen=True)
class TableFiles:
    """The data and delete files of one table's current snapshot."""

    table: str
    files: int
    bytes: int


@dataclass(frozen=True)
class MaintenanceReport:
    before: list[TableFiles]
    after: list[TableFiles]
    snapshots_before: int
    snapshots_after: int
    files_deleted: int

    def total(self, which: str) -> TableFiles:
        tables = self.before if which == "before" else self.after
        return TableFiles("all", sum(t.files for t in tables), sum(t.bytes for t in tables))


def table_files(con: duckdb.DuckDBPyConnection) -> list[TableFiles]:
    """Files and bytes of every lake table in its current snapshot (data files plus delete files)."""
    tables = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY 1, 2",
        [LAKE_ALIAS],
    ).fetchall()
    result = []
    for schema, table in tables:
        files, size = con.execute(
            f"""
            SELECT count(*) + count(delete_file),
                   coalesce(sum(data_file_size_bytes), 0) + coalesce(sum(delete_file_size_bytes), 0)
            FROM ducklake_list_files('{LAKE_ALIAS}', ?, schema => ?)
            """,
            [table, schema],
        ).fetchone()
        result.append(TableFiles(f"{schema}.{table}", int(files), int(size)))
    return result


def _snapshot_count(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute(f"SELECT count(*) FROM ducklake_snapshots('{LAKE_ALIAS}')").fetchone()[0])


def expire_snapshots(con: duckdb.DuckDBPyConnection, older_than: datetime) -> int:
    """Expire every snapshot taken before ``older_than`` except the current one; returns how many."""
    ids = [
        int(row[0])
        for row in con.execute(
            f"""
            SELECT snapshot_id FROM ducklake_snapshots('{LAKE_ALIAS}')
            WHERE snapshot_time < ?
              AND snapshot_id < (SELECT max(snapshot_id) FROM ducklake_snapshots('{LAKE_ALIAS}'))
            """,
            [older_than],
        ).fetchall()
    ]
    if ids:
        in_transaction(
            con, lambda: con.execute(f"CALL ducklake_expire_snapshots('{LAKE_ALIAS}', versions => ?)", [ids])
        )
    return len(ids)


def prune_checkpoints(con: duckdb.DuckDBPyConnection) -> int:
    """Delete every Kinesis checkpoint row older than the latest of its shard; returns how many."""
    row = in_transaction(
        con,
        lambda: con.execute(
            """
            DELETE FROM meta.kinesis_checkpoints AS k
            WHERE EXISTS (
                SELECT 1 FROM meta.kinesis_checkpoints AS newer
                WHERE newer.stream_name = k.stream_name AND newer.shard_id = k.shard_id
                  AND newer.updated_at > k.updated_at
            )
            """
        ).fetchone(),
    )
    return int(row[0]) if row else 0


def maintain_lake(con: duckdb.DuckDBPyConnection, retention: timedelta, now: datetime) -> MaintenanceReport:
    """Flush inlined rows, merge small files, expire snapshots older than ``now - retention``, and
    delete unreferenced files. Idempotent: a second run right after finds nothing to do."""
    before, snapshots_before = table_files(con), _snapshot_count(con)
    prune_checkpoints(con)
    in_transaction(con, lambda: con.execute(f"CALL ducklake_flush_inlined_data('{LAKE_ALIAS}')"))
    in_transaction(con, lambda: con.execute(f"CALL ducklake_merge_adjacent_files('{LAKE_ALIAS}')"))
    expire_snapshots(con, now - retention)
    deleted = in_transaction(
        con,
        lambda: con.execute(
            f"CALL ducklake_cleanup_old_files('{LAKE_ALIAS}', cleanup_all => true)"
        ).fetchall(),
    )
    return MaintenanceReport(before, table_files(con), snapshots_before, _snapshot_count(con), len(deleted))
