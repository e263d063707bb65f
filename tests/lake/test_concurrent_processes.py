"""Several processes write and read the lake at once (landing, dbt, analysts): nothing fails or is lost."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WRITER = textwrap.dedent(
    """
    import sys
    from cdr_platform.events import encode_event
    from cdr_platform.lake.connection import connect_lake
    from cdr_platform.lake.landing import LandingBatch, SourceRecord, land_batch
    from cdr_platform.lake.schema import ensure_schema
    from tests.kinesis_helpers import usage_events

    catalog, data_path, name, prefix = sys.argv[1:5]
    con = connect_lake(catalog, data_path)
    ensure_schema(con)
    events = usage_events(400, prefix=prefix)
    for start in range(0, 400, 20):
        chunk = events[start : start + 20]
        records = [SourceRecord(encode_event(e), f"{name}/{start + i}") for i, e in enumerate(chunk)]
        land_batch(con, LandingBatch(name, records))
    """
)
READER = textwrap.dedent(
    """
    import sys
    from cdr_platform.lake.connection import connect_lake

    con = connect_lake(sys.argv[1], sys.argv[2], read_only=True)
    for _ in range(30):
        con.execute("SELECT count(*) FROM raw.usage_events").fetchone()
    """
)


def test_three_writers_and_a_reader_in_four_processes(lake: duckdb.DuckDBPyConnection, lake_paths) -> None:
    def spawn(code: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-c", code, *args], stderr=subprocess.PIPE, text=True)

    processes = [spawn(WRITER, *lake_paths, name, name) for name in ("w1", "w2", "w3")]
    processes.append(spawn(READER, *lake_paths))
    for process in processes:
        _, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr
    counts = dict(lake.execute("SELECT source, count(*) FROM raw.usage_events GROUP BY 1").fetchall())
    assert counts == {"w1": 400, "w2": 400, "w3": 400}


def test_two_writers_landing_the_same_events_at_once_store_each_once(
    lake: duckdb.DuckDBPyConnection, lake_paths
) -> None:
    """Outside the Dagster pool too: overlapping transactions conflict (the writer row guarantees it
    on any catalog) and the retried one's anti-join sees the other's rows."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, *lake_paths, name, "same"], stderr=subprocess.PIPE, text=True
        )
        for name in ("a", "b")
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr
    total, distinct = lake.execute(
        "SELECT count(*), count(DISTINCT event_id) FROM raw.usage_events"
    ).fetchone()
    assert total == distinct == 400
