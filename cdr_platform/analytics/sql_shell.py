"""A read-only SQL session on the marts: ``cdr-platform sql``.

The lake is attached READ_ONLY with ``marts`` as the default schema, so ``select * from fct_calls``
works; other layers are ``staging.x``, ``raw.x``. Each statement runs in its own transaction on
the latest committed DuckLake snapshot, so sessions work while landing and dbt runs write.
Staging views need the pseudonymisation salt, which this session does not have: their
pseudonyms read as NULL here, by design.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import duckdb

from cdr_platform.errors import PlatformError
from cdr_platform.lake.connection import LAKE_ALIAS, attach_sql, connect_lake
from cdr_platform.settings import Settings

DEFAULT_SCHEMA = "marts"


class MartsNotBuiltError(PlatformError):
    """There is nothing to query yet; the message says what to run first."""


def _build_first(settings: Settings) -> str:
    return (
        "build them first: `make demo` (then query its lake with "
        f"CDR_DATA_DIR={settings.data_dir / 'demo'} cdr-platform sql), or materialise the dbt assets "
        "in the Dagster UI of `make dev`"
    )


def open_marts_session(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A read-only connection with the lake attached and ``lake.marts`` as the default schema.

    Raises ``MartsNotBuiltError`` before any dbt build: no local catalog yet (checked first, so that
    opening it read-only creates nothing), or a lake without the marts schema.
    """
    catalog = settings.resolved_lake_catalog
    if catalog.startswith("sqlite:") and not Path(catalog.removeprefix("sqlite:")).is_file():
        raise MartsNotBuiltError(
            f"no lake at {catalog.removeprefix('sqlite:')}, so no marts to query: {_build_first(settings)}"
        )
    con = connect_lake(catalog, settings.resolved_lake_data_path, read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    try:
        con.execute(f"USE {LAKE_ALIAS}.{DEFAULT_SCHEMA}")
    except duckdb.CatalogException as exc:
        con.close()
        raise MartsNotBuiltError(f"the lake has no {DEFAULT_SCHEMA} yet: {_build_first(settings)}") from exc
    return con


def analyst_attach_sql(settings: Settings) -> str:
    """What to paste into the DuckDB CLI or a notebook (after ``LOAD ducklake``)."""
    return (
        f"{attach_sql(settings.resolved_lake_catalog, settings.resolved_lake_data_path, read_only=True)};\n"
        f"USE {LAKE_ALIAS}.{DEFAULT_SCHEMA};"
    )


def write_csv(con: duckdb.DuckDBPyConnection, query: str, out: TextIO) -> int:
    """Run ``query`` and write its result as CSV with a header; returns the row count."""
    cursor = con.execute(query)
    writer = csv.writer(out, lineterminator="\n")
    if cursor.description is None:
        return 0
    writer.writerow([column[0] for column in cursor.description])
    count = 0
    while batch := cursor.fetchmany(10_000):
        writer.writerows(batch)
        count += len(batch)
    return count


def interactive(
    con: duckdb.DuckDBPyConnection, read: Callable[[str], str] = input, out: TextIO = sys.stdout
) -> int:
    """A minimal REPL: statements end with ``;``, ``.quit`` or end of input leaves."""
    print(
        "cdr-platform sql: read-only session on lake.marts; end statements with ';', .quit to leave", file=out
    )
    buffer: list[str] = []
    while True:
        try:
            line = read("marts> " if not buffer else "   ..> ")
        except EOFError:
            return 0
        if not buffer and line.strip() in (".quit", ".exit", "\\q"):
            return 0
        buffer.append(line)
        statement = "\n".join(buffer).strip()
        if not statement.endswith(";"):
            continue
        buffer.clear()
        try:
            relation = con.sql(statement)
            if relation is not None:
                print(relation, file=out)
        except duckdb.Error as exc:
            print(f"error: {exc}", file=out)
