"""A read-only SQL session on the marts: ``cdr-platform sql [--role analyst|platform]``.

The lake is attached READ_ONLY with ``marts`` as the default schema, so ``select * from fct_calls``
works. Then DuckDB's ``enable_external_access`` is switched off (no files read or written outside
the lake, no COPY TO, no ATTACH of files, no extension install or load) and ``lock_configuration``
keeps it off for the session's life. The analyst role (the default) also checks every statement
before it runs (``sql_guard``): queries only, on ``marts`` only. The platform role, for the data
platform team, reads every layer (``raw.x``, ``meta.x``, ``staging.x``) under the same lock.
Each statement runs in its own transaction on the latest committed DuckLake snapshot, so sessions
work while landing and dbt runs write. Staging views need the pseudonymisation salt, which no
session has: their pseudonyms read as NULL here, by design.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TextIO

import duckdb

from cdr_platform.analytics.sql_guard import AnalystRefusal, check_analyst_sql
from cdr_platform.errors import PlatformError
from cdr_platform.lake.connection import LAKE_ALIAS, attach_sql, connect_lake
from cdr_platform.settings import Settings

DEFAULT_SCHEMA = "marts"


class Role(StrEnum):
    """Who the session is for: analysts read the marts only, the data platform team every layer."""

    ANALYST = "analyst"
    PLATFORM = "platform"


class MartsNotBuiltError(PlatformError):
    """There is nothing to query yet; the message says what to run first."""


def _build_first(settings: Settings) -> str:
    return (
        "build them first: `make demo` (then query its lake with "
        f"CDR_DATA_DIR={settings.data_dir / 'demo'} cdr-platform sql), or materialise the dbt assets "
        "in the Dagster UI of `make dev`"
    )


def open_marts_session(settings: Settings, role: Role = Role.ANALYST) -> duckdb.DuckDBPyConnection:
    """A read-only connection with the lake attached, ``lake.marts`` as the default schema, no
    external access and a locked configuration (so no statement can turn external access back on).

    An analyst session attaches ``analyst_lake_catalog`` when it is set (production: a catalog role
    that sees the mart schemas only, ``lake/catalog_roles.py``), so the catalog itself refuses what
    the statement check would; its S3 reads use whatever credentials the analyst's AWS chain holds.

    The lock holds for every role; what a role may name is checked per statement by ``run_checked``.
    Raises ``MartsNotBuiltError`` before any dbt build: no local catalog yet (checked first, so that
    opening it read-only creates nothing), or a lake without the marts schema.
    """
    catalog = settings.resolved_lake_catalog
    if role is Role.ANALYST and settings.analyst_lake_catalog:
        catalog = settings.analyst_lake_catalog
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
    # DuckLake reads its data files through DuckDB's file system, so their folder stays readable
    # (the analysts' check refuses naming files there); nothing else can reach a file.
    data_path = settings.resolved_lake_data_path.rstrip("/") + "/"
    con.execute("SET allowed_directories = [?]", [data_path])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run_checked(
    con: duckdb.DuckDBPyConnection, sql: str, role: Role = Role.ANALYST
) -> duckdb.DuckDBPyConnection:
    """Execute ``sql`` after the role's check (``AnalystRefusal`` for an analyst outside the marts)."""
    if role is Role.ANALYST:
        check_analyst_sql(con, sql)
    return con.execute(sql)


def analyst_attach_sql(settings: Settings) -> str:
    """What to paste into the DuckDB CLI or a notebook (after ``LOAD ducklake``)."""
    catalog = settings.analyst_lake_catalog or settings.resolved_lake_catalog
    return (
        f"{attach_sql(catalog, settings.resolved_lake_data_path, read_only=True)};\n"
        f"USE {LAKE_ALIAS}.{DEFAULT_SCHEMA};"
    )


def write_csv(con: duckdb.DuckDBPyConnection, query: str, out: TextIO, role: Role = Role.ANALYST) -> int:
    """Run ``query`` as ``role`` and write its result as CSV with a header; returns the row count."""
    cursor = run_checked(con, query, role)
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
    con: duckdb.DuckDBPyConnection,
    read: Callable[[str], str] = input,
    out: TextIO = sys.stdout,
    role: Role = Role.ANALYST,
) -> int:
    """A minimal REPL: statements end with ``;``, ``.quit`` or end of input leaves."""
    reach = "the marts only" if role is Role.ANALYST else "every layer (raw.x, meta.x, staging.x)"
    print(
        f"cdr-platform sql ({role} role): read-only session on lake.marts, reading {reach}; "
        "end statements with ';', .quit to leave",
        file=out,
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
            if role is Role.ANALYST:
                check_analyst_sql(con, statement)
            relation = con.sql(statement)
            if relation is not None:
                print(relation, file=out)
        except (duckdb.Error, AnalystRefusal) as exc:
            print(f"error: {exc}", file=out)
