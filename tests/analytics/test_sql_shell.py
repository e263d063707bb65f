"""``cdr-platform sql`` before any dbt build: one line saying what to run first, no traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cdr_platform.cli import main
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.schema import ensure_schema

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
