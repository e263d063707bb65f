"""An incremental dbt run reads only its windows of raw history, never the whole of it.

The sentinel: history is landed one day per transaction, so each of raw.usage_events' data files
holds one day. After a first build and a new slice, the files of the days no incremental model
needs are moved away; reading them now fails ("file not found"), which the test checks first. The
incremental run that follows must still succeed, and its marts must equal a run that still had every
file. So every read of raw.usage_events in an incremental run is pruned to its window before any
file is opened: the models' lookback (``lookback_hours`` plus ``call_max_span_hours`` before the
high-water mark) and the executives' two days (today and the same day last week).

raw.member_events is left whole: member lifecycles are rebuilt from all of a member's lifecycle
events (a few per member, not per call), see ``int_member_lifecycles_summarised``.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from cdr_platform.defs.transform.project import dbt_cli, dbt_project
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.schema import ensure_schema
from tests.transform.conftest import MART_KEYS
from tests.transform.dataset import AS_OF, generate_events, land_events

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SLICE = timedelta(hours=1)
# Days outside every window of the incremental run after the slice (AS_OF is 2025-03-15 14:30 UTC):
# the exec reports read 03-08 (same day last week) and 03-15; the lookback reaches back to about
# 03-12 13:30 (48 h before the high-water mark, minus a call's 24 h span for its earlier events).
UNREAD_DAYS = [date(2025, 3, day) for day in (3, 4, 5, 6, 7, 9, 10)]
MARTS = ["fct_calls", "fct_cell_kpis_hourly", "fct_member_daily_usage", "fct_revenue_daily",
         "fct_engagement_daily", "dim_cells", "dim_members", "rpt_churn_features"]  # fmt: skip
EXEC_REPORTS = ["rpt_exec_kpis_intraday", "rpt_exec_kpis_hourly"]
EXEC = "path:models/marts/exec"
MISSING_FILE = r"(?i)no such file|not found|cannot open|failed to open"


@dataclass
class SentinelLakes:
    """Two lakes built alike; the sentinel one has lost the files of ``UNREAD_DAYS``."""

    root: Path
    control: tuple[str, str]
    sentinel: tuple[str, str]

    def marts(self, lake: tuple[str, str], names: list[str]) -> dict[str, pd.DataFrame]:
        con = connect_lake(*lake, read_only=True)
        try:
            con.execute("SET TimeZone = 'UTC'")
            return {
                name: con.execute(f"SELECT * FROM marts.{name} ORDER BY {', '.join(MART_KEYS[name])}").df()
                for name in names
            }
        finally:
            con.close()

    def assert_equal_marts(self, names: list[str]) -> None:
        """Same rows in both lakes (doubles to 1e-9: DuckDB sums them in no fixed order)."""
        sentinel, control = self.marts(self.sentinel, names), self.marts(self.control, names)
        for name in names:
            pd.testing.assert_frame_equal(
                sentinel[name], control[name], check_exact=False, rtol=1e-9, obj=name
            )


def _dbt_run(target: Path, *args: str) -> dict[str, object]:
    invocation = dbt_cli(dbt_project()).cli(["run", *args], target_path=target, raise_on_error=False).wait()
    results = json.loads((target / "run_results.json").read_text())
    failed = [
        r["unique_id"] + ": " + str(r.get("message")) for r in results["results"] if r["status"] != "success"
    ]
    assert invocation.is_successful() and not failed, f"dbt run {' '.join(args)} failed: {failed}"
    return results


def _usage_files(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT data_file FROM ducklake_list_files('lake', 'usage_events', schema => 'raw')")
    return {row[0] for row in rows.fetchall()}


def _build_lake(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, dict[date, set[str]]]:
    """History landed day by day, built once, then the new slice landed; returns the day -> files map."""
    catalog, data_path = f"sqlite:{root / 'catalog.sqlite'}", f"{root / 'files'}/"
    monkeypatch.setenv("CDR_LAKE_CATALOG", catalog)
    monkeypatch.setenv("CDR_LAKE_DATA_PATH", data_path)
    monkeypatch.delenv("CDR_CONFIG_FILE", raising=False)
    events = generate_events(days=13, members=6)
    by_day = defaultdict(list)
    for event in events:
        if event.occurred_at < AS_OF - SLICE:
            by_day[event.occurred_at.date()].append(event)
    files: dict[date, set[str]] = {}
    con = connect_lake(catalog, data_path)
    try:
        ensure_schema(con)
        for day in sorted(by_day):
            before = _usage_files(con)
            land_events(con, by_day[day])
            files[day] = _usage_files(con) - before
        _dbt_run(root / "target-first")
        land_events(con, [e for e in events if e.occurred_at >= AS_OF - SLICE])
    finally:
        con.close()
    return catalog, data_path, files


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelLakes]:
    root = tmp_path_factory.mktemp("incremental_windows")
    with pytest.MonkeyPatch.context() as monkeypatch:
        control = _build_lake(root / "control", monkeypatch)
        _dbt_run(root / "control" / "target-incremental")
        *sentinel, files = _build_lake(root / "sentinel", monkeypatch)
        moved = root / "moved"
        moved.mkdir()
        for day in UNREAD_DAYS:
            assert files[day], f"no data file was written for {day}: the sentinel would prove nothing"
            for path in files[day]:
                shutil.move(path, moved / Path(path).name)
        yield SentinelLakes(root, (control[0], control[1]), (sentinel[0], sentinel[1]))


def test_sentinel_bites_a_reader_of_the_whole_history(lakes: SentinelLakes) -> None:
    con = connect_lake(*lakes.sentinel, read_only=True)
    try:  # a count alone is answered from the catalog's metadata, so read the payloads
        with pytest.raises(duckdb.Error, match=MISSING_FILE):
            con.execute("SELECT sum(hash(payload::varchar)) FROM raw.usage_events").fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def incremental(lakes: SentinelLakes) -> SentinelLakes:
    """The sentinel lake after an incremental run of every model outside the executives' folder."""
    _dbt_run_on(lakes.sentinel, lakes.root / "sentinel" / "target-incremental", "--exclude", EXEC)
    return lakes


def _dbt_run_on(lake: tuple[str, str], target: Path, *args: str) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("CDR_LAKE_CATALOG", lake[0])
        monkeypatch.setenv("CDR_LAKE_DATA_PATH", lake[1])
        _dbt_run(target, *args)


def test_incremental_run_reads_only_its_windows(incremental: SentinelLakes) -> None:
    """Staging, intermediate and every mart outside the executives' folder, built incrementally."""
    incremental.assert_equal_marts(MARTS)


def test_exec_reports_read_only_today_and_the_same_day_last_week(incremental: SentinelLakes) -> None:
    _dbt_run_on(incremental.sentinel, incremental.root / "sentinel" / "target-exec", "--select", EXEC)
    incremental.assert_equal_marts(EXEC_REPORTS)


def _dbt_test_on(lake: tuple[str, str], target: Path, tests: str, *args: str) -> list[dict[str, object]]:
    """``dbt test`` on ``lake`` with ``DBT_CDR_TESTS`` set to ``tests``; returns the failed results."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("CDR_LAKE_CATALOG", lake[0])
        monkeypatch.setenv("CDR_LAKE_DATA_PATH", lake[1])
        monkeypatch.setenv("DBT_CDR_TESTS", tests)
        dbt_cli(dbt_project()).cli(["test", *args], target_path=target, raise_on_error=False).wait()
    results = json.loads((target / "run_results.json").read_text())["results"]
    assert results, "dbt test ran no test"
    return [r for r in results if r["status"] != "pass"]


SOURCE_TESTS = "source:raw.usage_events"


def test_incremental_tests_read_only_the_recent_window(incremental: SentinelLakes) -> None:
    """The data tests of an incremental build read the lookback window (48 h before the latest
    event): on the sentinel lake they all pass; every row (``DBT_CDR_TESTS=full``) meets the moved files."""
    target = incremental.root / "sentinel" / "target-tests"
    failed = _dbt_test_on(incremental.sentinel, target, "window", "--exclude", EXEC)
    assert not failed, [(r["unique_id"], r.get("message")) for r in failed]
    failed = _dbt_test_on(incremental.sentinel, target, "full", "--select", SOURCE_TESTS)
    assert failed and all(re.search(MISSING_FILE, str(r.get("message"))) for r in failed), failed


def test_windowed_tests_catch_a_recent_bad_row_and_the_full_tests_an_old_one(lakes: SentinelLakes) -> None:
    """A row the source's accepted_values refuses, in the window and then before it (control lake,
    the row removed after)."""
    target = lakes.root / "control" / "target-tests"
    con = connect_lake(*lakes.control)

    def bad_row_at(occurred_at: str) -> None:
        con.execute("DELETE FROM raw.usage_events WHERE event_type = 'not_an_event_type'")
        con.execute(
            "INSERT INTO raw.usage_events SELECT * REPLACE (uuid() AS event_id, 'not_an_event_type' AS"
            f" event_type, timestamptz '{occurred_at}' AS occurred_at) FROM raw.usage_events LIMIT 1"
        )

    try:
        bad_row_at((AS_OF - timedelta(hours=1)).isoformat())
        (failed,) = _dbt_test_on(lakes.control, target, "window", "--select", SOURCE_TESTS)
        assert "accepted_values" in str(failed["unique_id"])
        bad_row_at((AS_OF - timedelta(days=5)).isoformat())
        assert not _dbt_test_on(lakes.control, target, "window", "--select", SOURCE_TESTS)
        (failed,) = _dbt_test_on(lakes.control, target, "full", "--select", SOURCE_TESTS)
        assert "accepted_values" in str(failed["unique_id"])
    finally:
        con.execute("DELETE FROM raw.usage_events WHERE event_type = 'not_an_event_type'")
        con.close()
