"""A fresh DuckLake warehouse (SQLite catalog, local files) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.schema import ensure_schema


@pytest.fixture
def lake_paths(tmp_path: Path) -> tuple[str, str]:
    return f"sqlite:{tmp_path / 'catalog.sqlite'}", f"{tmp_path / 'files'}/"


@pytest.fixture
def lake(lake_paths: tuple[str, str]) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect_lake(*lake_paths)
    ensure_schema(con)
    yield con
    con.close()
