"""``cdr-platform sql``: what to run first before any dbt build, and what each role may read.

The analyst role reads the marts only (also views over raw), and each refusal is tried: other
schemas, writes, COPY TO, local files, ATTACH, extensions, configuration. The platform role reads
every layer, still without writes or files.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import duckdb
import pytest

from cdr_platform.analytics.sql_shell import Role, interactive, open_marts_session, write_csv
from cdr_platform.cli import main
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.schema import ensure_schema
from cdr_platform.settings import load_settings

pytestmark = pytest.mark.unit


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data folder as the only CDR_* setting of the process environment."""
    for key in [key for key in os.environ if key.startswith("CDR_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("CDR_DATA_DIR", str(tmp_path))
    return tmp_path


def test_sql_without_a_lake_says_what_to_run_first(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sql", "-c", "select 1"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"error: no lake at {data_dir / 'lake' / 'catalog.sqlite'}")
    assert "make demo" in err and err.count("\n") == 1
    assert list(data_dir.iterdir()) == []  # looking created nothing


def test_sql_on_a_lake_without_marts_says_what_to_run_first(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    con = connect_lake(f"sqlite:{data_dir / 'lake' / 'catalog.sqlite'}", f"{data_dir / 'lake' / 'files'}/")
    ensure_schema(con)  # landed raw tables, no dbt build yet
    con.close()
    assert main(["sql", "-c", "select 1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the lake has no marts yet: build them first: `make demo`")
    assert err.count("\n") == 1


@pytest.fixture
def lake_with_marts(data_dir: Path) -> Path:
    """A lake with one landed member event (a real-looking IMSI in raw), a mart table, a mart view
    over the raw layer (as the exec marts are), and a table in the lake's ``main`` schema."""
    con = connect_lake(f"sqlite:{data_dir / 'lake' / 'catalog.sqlite'}", f"{data_dir / 'lake' / 'files'}/")
    ensure_schema(con)
    _land_member_event(con, "m-1")
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.fct_members AS SELECT 'm-1' AS member_id, 42 AS calls")
    con.execute("CREATE VIEW marts.rpt_members_live AS SELECT member_id FROM raw.member_events")
    con.execute("CREATE TABLE main.scratch AS SELECT 1 AS x")
    con.execute("CALL ducklake_flush_inlined_data('lake')")  # rows in Parquet files, as at scale
    con.close()
    return data_dir


def _land_member_event(con: duckdb.DuckDBPyConnection, member_id: str) -> None:
    con.execute(
        f"""INSERT INTO raw.member_events VALUES (uuid(), 'MemberJoined', 1, now(), '{member_id}', 'c',
        'p', '{{"served_imsi": "{IMSI}"}}', 'test', '1', now())"""
    )


IMSI = "310150123456789"
SECRET_FILE_TEXT = "not for analysts"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.csv"
    path.write_text(f"line\n{SECRET_FILE_TEXT}\n")
    return path


def _sql(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["sql", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_analyst_reads_marts_including_views_over_raw(
    lake_with_marts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _sql(capsys, "-c", "SELECT member_id, calls FROM fct_members") == (
        0,
        "member_id,calls\nm-1,42\n",
        "",
    )
    code, out, err = _sql(
        capsys, "-c", "WITH raw AS (SELECT member_id FROM marts.rpt_members_live) SELECT * FROM raw, range(1)"
    )
    assert (code, err) == (0, "") and out.splitlines()[1:] == ["m-1,0"]


REFUSALS = {
    "raw schema": (
        "SELECT payload->>'served_imsi' FROM raw.member_events",
        "analyst sessions read the marts only: raw.member_events is in schema raw",
    ),
    "raw, catalog-qualified": (
        "SELECT 1 FROM fct_members WHERE member_id IN (SELECT member_id FROM lake.raw.member_events)",
        "analyst sessions read the marts only: lake.raw.member_events is in schema raw",
    ),
    "meta schema": (
        "SELECT * FROM meta.kinesis_checkpoints",
        "analyst sessions read the marts only: meta.kinesis_checkpoints is in schema meta",
    ),
    "unqualified name outside marts": (
        "SELECT * FROM scratch",
        "analyst sessions read the marts only: scratch is in schema main",
    ),
    "DuckLake's catalog tables": (
        "SELECT * FROM __ducklake_metadata_lake.ducklake_data_file",
        "analyst sessions read the marts only: __ducklake_metadata_lake.ducklake_data_file is in catalog",
    ),
    "SQL run by query()": (
        "SELECT * FROM query('SELECT * FROM ' || 'raw.member_events')",
        "analyst sessions read the marts only: the table function query() is refused",
    ),
    "insert": ("INSERT INTO fct_members VALUES ('m-2', 1)", "analyst sessions run queries only: INSERT"),
    "update": ("UPDATE fct_members SET calls = 0", "analyst sessions run queries only: UPDATE"),
    "delete": ("DELETE FROM fct_members", "analyst sessions run queries only: DELETE"),
    "create": ("CREATE TEMP TABLE t AS SELECT 1", "analyst sessions run queries only: CREATE"),
    "drop": ("DROP TABLE fct_members", "analyst sessions run queries only: DROP"),
    "copy to": ("COPY fct_members TO '{out}'", "analyst sessions run queries only: COPY"),
    "read_text": (
        "SELECT * FROM read_text('{secret}')",
        "analyst sessions read the marts only: the table function read_text()",
    ),
    "read_csv": (
        "SELECT * FROM read_csv('{secret}')",
        "analyst sessions read the marts only: the table function read_csv()",
    ),
    "file as a table": (
        "SELECT * FROM '{secret}'",
        'analyst sessions read the marts only: "{secret}" is not',
    ),
    "lake file as a table": (
        "SELECT * FROM '{lake_file}'",
        'analyst sessions read the marts only: "{lake_file}"',
    ),
    "attach": ("ATTACH ':memory:' AS other", "analyst sessions run queries only: ATTACH"),
    "install": ("INSTALL httpfs", "analyst sessions run queries only: LOAD"),
    "load": ("LOAD httpfs", "analyst sessions run queries only: LOAD"),
    "set": ("SET enable_external_access = true", "analyst sessions run queries only: SET"),
    "a refusal after a query": (
        "SELECT 1; DROP TABLE fct_members",
        "analyst sessions run queries only: DROP",
    ),
}


@pytest.mark.parametrize("sql, refusal", REFUSALS.values(), ids=REFUSALS.keys())
def test_analyst_session_refuses(
    sql: str,
    refusal: str,
    lake_with_marts: Path,
    secret_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out_file = tmp_path / "copied.csv"
    lake_file = next((lake_with_marts / "lake" / "files" / "raw").rglob("*.parquet"))
    names = {"secret": secret_file, "out": out_file, "lake_file": lake_file}
    code, out, err = _sql(capsys, "-c", sql.format(**names))
    assert code == 1
    assert err.startswith(f"error: {refusal.format(**names)}"), err
    assert IMSI not in out + err and SECRET_FILE_TEXT not in out + err
    assert not out_file.exists()
    assert _sql(capsys, "-c", "SELECT count(*) AS n FROM fct_members")[1] == "n\n1\n"  # nothing written


def test_platform_role_reads_every_layer_read_only_and_no_file(
    lake_with_marts: Path, secret_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _sql(
        capsys, "--role", "platform", "-c", "SELECT payload->>'served_imsi' AS imsi FROM raw.member_events"
    )
    assert (code, out) == (0, f"imsi\n{IMSI}\n")
    assert _sql(capsys, "--role", "platform", "-c", "SELECT count(*) AS n FROM meta.raw_writer")[:2] == (
        0,
        "n\n1\n",  # the one writer claim's row (lake/claims.py)
    )
    for sql, refusal in [
        ("INSERT INTO fct_members VALUES ('m-2', 1)", "read-only"),
        (f"COPY fct_members TO '{tmp_path / 'copied.csv'}'", "Permission Error"),
        (f"SELECT * FROM read_csv('{secret_file}')", "Permission Error"),
        ("INSTALL httpfs", "Permission Error"),
        ("SET enable_external_access = true", "the configuration has been locked"),
    ]:
        code, out, err = _sql(capsys, "--role", "platform", "-c", sql)
        assert code == 1 and refusal in err, (sql, err)
    assert not (tmp_path / "copied.csv").exists()


def test_interactive_analyst_session_refuses_and_goes_on(lake_with_marts: Path) -> None:
    """A long-lived session (the dashboard's, a REPL) keeps reading rows landed after it opened."""
    settings = load_settings()
    con = open_marts_session(settings)
    try:
        writer = connect_lake(settings.resolved_lake_catalog, settings.resolved_lake_data_path)
        _land_member_event(writer, "m-2")
        writer.execute("CALL ducklake_flush_inlined_data('lake')")  # a new Parquet file after the lock
        writer.close()
        lines = iter(
            ["SELECT * FROM raw.member_events;", "SELECT member_id", "FROM rpt_members_live;", ".quit"]
        )
        out = io.StringIO()
        assert interactive(con, read=lambda _: next(lines), out=out, role=Role.ANALYST) == 0
        text = out.getvalue()
        assert "error: analyst sessions read the marts only: raw.member_events is in schema raw" in text
        assert IMSI not in text and "m-2" in text  # refused, then answered
        buffer = io.StringIO()
        assert write_csv(con, "SELECT count(*) AS n FROM rpt_members_live", buffer) == 1
        assert buffer.getvalue() == "n\n2\n"
    finally:
        con.close()
