"""A local PostgreSQL 15 server for the production-shaped profile: Debian's server binaries, one cluster.

The cluster lives in ``<state_dir>/postgres`` (``initdb`` once, reused on the next start), listens on
loopback TCP only (no Unix socket), and trusts loopback connections as it would trust a private
network: the DSNs it hands out never hold a password, as ``CDR_LAKE_CATALOG`` requires. PostgreSQL
refuses to run as root, so under root the server runs as the ``postgres`` system user (``nobody``
when there is none), which must be able to reach the state folder.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from pathlib import Path

from cdr_platform.devstack.kinesis_local import DevstackError

POSTGRES_BIN = Path(os.environ.get("CDR_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "cdr"
DATABASES = ("lake", "dagster")
"""Created on start: the DuckLake catalog and Dagster's run, event-log and schedule storage."""


def postgres_dsn(port: int, dbname: str, host: str = "127.0.0.1") -> str:
    """A libpq key=value DSN without a password (the cluster trusts loopback)."""
    return f"dbname={dbname} host={host} port={port} user={SUPERUSER}"


def _binary(name: str) -> Path:
    path = POSTGRES_BIN / name
    if not path.is_file():
        raise DevstackError(
            f"{path} is missing: the production profile needs the PostgreSQL 15 server "
            "(`make install` runs apt-get install -y postgresql-15; or set CDR_POSTGRES_BIN)"
        )
    return path


def _service_user() -> pwd.struct_passwd | None:
    """The unprivileged user the server runs as when this process is root, else None (run as self)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise DevstackError("running as root and no 'postgres' or 'nobody' user exists to run PostgreSQL as")


def _run_as(user: pwd.struct_passwd | None) -> dict[str, object]:
    return {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _prepare_cluster_dir(pgdata: Path, user: pwd.struct_passwd | None) -> None:
    pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
    if user is None:
        return
    os.chown(pgdata, user.pw_uid, user.pw_gid)
    reachable = subprocess.run(
        ["test", "-w", str(pgdata)],
        check=False,
        **_run_as(user),  # type: ignore[call-overload]
    )
    if reachable.returncode != 0:
        raise DevstackError(
            f"PostgreSQL runs as user {user.pw_name!r} (root may not run it) and cannot reach {pgdata}: "
            "choose a data folder whose parents others may enter (not under a 0700 folder)"
        )


def init_cluster(pgdata: Path, log_path: Path) -> None:
    """``initdb`` the cluster unless it exists: UTF-8, no locale, trust on loopback."""
    user = _service_user()
    _prepare_cluster_dir(pgdata, user)
    if (pgdata / "PG_VERSION").exists():
        return
    with log_path.open("ab") as log:
        result = subprocess.run(
            [
                str(_binary("initdb")),
                "-D",
                str(pgdata),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
            **_run_as(user),  # type: ignore[call-overload]
        )
    if result.returncode != 0:
        raise DevstackError(f"initdb failed for {pgdata}; see {log_path}")


def start_postgres(pgdata: Path, host: str, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """The postmaster in a session of its own, on loopback TCP only; stop it with SIGINT (fast shutdown)."""
    init_cluster(pgdata, log_path)
    command = [
        str(_binary("postgres")),
        "-D",
        str(pgdata),
        "-h",
        host,
        "-p",
        str(port),
        "-c",
        "unix_socket_directories=",
        "-c",
        "fsync=off",  # a local, disposable cluster: durability across power loss is not its job
        "-c",
        "max_connections=200",
    ]
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **_run_as(_service_user()),  # type: ignore[call-overload]
        )


def wait_until_accepting(
    host: str, port: int, process: subprocess.Popen[bytes], deadline_s: float, log_path: Path
) -> None:
    """Poll until the server accepts queries (not just TCP: recovery may still be running)."""
    import psycopg2

    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DevstackError(f"PostgreSQL exited with code {process.returncode}; see {log_path}")
        try:
            psycopg2.connect(postgres_dsn(port, "postgres", host), connect_timeout=2).close()
            return
        except psycopg2.OperationalError:
            time.sleep(0.1)
    raise DevstackError(f"PostgreSQL did not accept connections on {host}:{port}; see {log_path}")


def create_database(host: str, port: int, name: str) -> bool:
    """Create database ``name`` unless it exists; True when it was created."""
    import psycopg2

    con = psycopg2.connect(postgres_dsn(port, "postgres", host))
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                return False
            cur.execute(f'CREATE DATABASE "{name}"')
            return True
    finally:
        con.close()


def drop_database(host: str, port: int, name: str) -> None:
    """Drop database ``name`` if it exists, ending its sessions first."""
    import psycopg2

    con = psycopg2.connect(postgres_dsn(port, "postgres", host))
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        con.close()
