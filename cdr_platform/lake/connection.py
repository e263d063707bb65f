"""Connections to the DuckLake warehouse.

DuckLake keeps table metadata in a catalog database (SQLite locally, Postgres in production) and
data in Parquet files (a local folder or S3), so landing runs, dbt and analysts can work on it
from several processes at once, which a plain DuckDB file does not allow. DuckDB cannot download
extensions on these machines, so they are installed from the ``duckdb-extension-*`` wheels that
the lock pins to DuckDB's own version.
"""

from __future__ import annotations

import contextlib
import importlib.util
import random
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import duckdb

from cdr_platform.errors import PlatformError

LAKE_ALIAS = "lake"
SQLITE_BUSY_TIMEOUT_MS = 10_000
T = TypeVar("T")
_EXTENSION_WHEELS = {
    "ducklake": "duckdb_extension_ducklake",
    "sqlite_scanner": "duckdb_extension_sqlite_scanner",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "httpfs": "duckdb_extension_httpfs",
}


class LakeError(PlatformError):
    """The warehouse could not be opened; the message names the setting or file involved."""


@cache
def extension_file(name: str) -> Path:
    """Path of a DuckDB extension binary shipped in its PyPI wheel."""
    spec = importlib.util.find_spec(_EXTENSION_WHEELS[name])
    if spec is None or spec.origin is None:
        raise LakeError(f"the {_EXTENSION_WHEELS[name]} package is missing: run `make install`")
    found = sorted(Path(spec.origin).parent.rglob(f"{name}.duckdb_extension"))
    if not found:
        raise LakeError(f"no {name}.duckdb_extension inside {Path(spec.origin).parent}")
    return found[-1]


def needed_extensions(catalog: str, data_path: str) -> list[str]:
    """DuckLake, the catalog's scanner (SQLite or Postgres), and httpfs for an S3 data path."""
    names = ["ducklake", "postgres_scanner" if catalog.startswith("postgres:") else "sqlite_scanner"]
    if data_path.startswith(("s3://", "https://", "gs://", "r2://")):
        names.append("httpfs")
    return names


def load_extensions(con: duckdb.DuckDBPyConnection, catalog: str, data_path: str = "") -> None:
    """Install (from the pinned wheel files, never a download) and load what the lake needs."""
    for name in needed_extensions(catalog, data_path):
        con.execute(f"INSTALL '{extension_file(name)}'")
        con.execute(f"LOAD {name}")


def prepare_connection(con: duckdb.DuckDBPyConnection, catalog: str, data_path: str) -> None:
    """Everything a connection needs before it attaches the lake: extensions, and S3 credentials
    for an ``s3://`` data path (``configure_s3``). ``connect_lake`` and the dbt plugin call it."""
    load_extensions(con, catalog, data_path)
    if data_path.startswith("s3://"):
        configure_s3(con)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def configure_s3(con: duckdb.DuckDBPyConnection) -> None:
    """A DuckDB S3 secret from the AWS SDK's default chain, exactly as boto3 resolves it.

    Credentials (task or instance role, SSO profile, ``AWS_ACCESS_KEY_ID``), region and endpoint
    (``AWS_ENDPOINT_URL_S3``, e.g. the devstack's local S3) come from boto3, so the lake reaches S3
    the way every other AWS client of the platform does and no key is ever a platform setting.
    Temporary credentials are frozen into the connection: connections live for one run.
    """
    import boto3

    session = boto3.session.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise LakeError(
            "the lake's data path is on S3 but the AWS default credential chain found no credentials "
            "(attach a role, set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        )
    frozen = credentials.get_frozen_credentials()
    client = session.client("s3")  # resolves AWS_ENDPOINT_URL_S3 and the region like any client
    options = {
        "KEY_ID": frozen.access_key,
        "SECRET": frozen.secret_key,
        "REGION": client.meta.region_name or "us-east-1",
    }
    if frozen.token:
        options["SESSION_TOKEN"] = frozen.token
    endpoint = urlsplit(client.meta.endpoint_url)
    if endpoint.hostname and not endpoint.hostname.endswith(".amazonaws.com"):
        options |= {"ENDPOINT": endpoint.netloc, "URL_STYLE": "path"}
        options["USE_SSL"] = "true" if endpoint.scheme == "https" else "false"
    rendered = ", ".join(
        f"{key} {value if key == 'USE_SSL' else _literal(value)}" for key, value in options.items()
    )
    con.execute(f"CREATE OR REPLACE SECRET cdr_lake_s3 (TYPE s3, {rendered})")


def attach_sql(catalog: str, data_path: str, alias: str = LAKE_ALIAS, read_only: bool = False) -> str:
    """The ATTACH statement for the lake; analysts can paste it into the DuckDB CLI."""
    options = [f"DATA_PATH '{data_path}'"]
    if catalog.startswith("sqlite:"):
        # Several processes (landing runs, dbt, analysts) share the catalog: WAL lets readers run
        # beside the writer, and writers wait for each other instead of failing at once.
        options += ["META_JOURNAL_MODE 'WAL'", f"META_BUSY_TIMEOUT {SQLITE_BUSY_TIMEOUT_MS}"]
    if read_only:
        options.append("READ_ONLY")
    return f"ATTACH 'ducklake:{catalog}' AS {alias} ({', '.join(options)})"


def ensure_local_folders(catalog: str, data_path: str) -> None:
    """Create the folders of a local catalog and data path (the first writer creates the lake)."""
    if catalog.startswith("sqlite:"):
        Path(catalog.removeprefix("sqlite:")).parent.mkdir(parents=True, exist_ok=True)
    if "://" not in data_path:
        Path(data_path).mkdir(parents=True, exist_ok=True)


def connect_lake(catalog: str, data_path: str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-process DuckDB connection with the lake attached and selected (``USE lake``)."""
    ensure_local_folders(catalog, data_path)
    con = duckdb.connect()
    try:
        prepare_connection(con, catalog, data_path)
        con.execute(attach_sql(catalog, data_path, read_only=read_only))
        con.execute(f"USE {LAKE_ALIAS}")
        con.execute("SET TimeZone = 'UTC'")  # hours and days of event time are UTC everywhere
    except duckdb.Error as exc:
        con.close()
        raise LakeError(f"cannot open the lake (catalog {catalog!r}, data {data_path!r}): {exc}") from exc
    return con


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int | None:
    """The lake's latest committed snapshot id as ``con`` sees it now (None when it cannot say): what a
    reader compares to know whether anything was committed since its last read."""
    try:
        row = con.execute(f"SELECT * FROM ducklake_current_snapshot('{LAKE_ALIAS}')").fetchone()
    except duckdb.Error:
        return None
    return int(row[0]) if row and row[0] is not None else None


RETRY_CAP_S = 5.0
"""Longest pause between two attempts of one transaction (jittered exponential backoff up to it)."""


def is_retryable_conflict(exc: BaseException) -> bool:
    """A commit refused because another writer won a race: SQLite's lock, or DuckLake's conflict
    (``TransactionException`` "Failed to commit DuckLake transaction. Transaction conflict - ...")."""
    message = str(exc).lower()
    return isinstance(exc, duckdb.Error) and ("database is locked" in message or "conflict" in message)


def in_transaction(
    con: duckdb.DuckDBPyConnection,
    work: Callable[[], T],
    *,
    attempts: int = 8,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``work`` in one transaction; on a catalog lock or write conflict, roll back and run it again.

    A SQLite catalog can refuse a commit outright when two processes upgrade to writers at once
    (SQLITE_BUSY without waiting, see duckdb/ducklake#1309), and DuckLake reports conflicting
    writes at commit (two landing workers claiming one key range, see ``lake/claims.py``): both are
    safe to retry because ``work`` recomputes everything inside the transaction, so a re-run landing
    sees the winner's rows. The pause grows with jittered exponential backoff, capped at
    ``RETRY_CAP_S``. Other errors, and a conflict on the last attempt, roll back and propagate.
    """
    for attempt in range(attempts):
        con.execute("BEGIN TRANSACTION")
        try:
            result = work()
            con.execute("COMMIT")
            return result
        except duckdb.Error as exc:
            _rollback(con)
            if not is_retryable_conflict(exc) or attempt == attempts - 1:
                raise
            sleep(random.uniform(0.5, 1.0) * min(RETRY_CAP_S, 0.1 * 2**attempt))
        except BaseException:
            _rollback(con)
            raise
    raise AssertionError("unreachable")


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # a failed COMMIT has already ended the transaction
        con.execute("ROLLBACK")
