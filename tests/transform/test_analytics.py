"""``cdr-platform owners`` and ``cdr-platform sql``, and the KPI chart."""

from __future__ import annotations

import argparse
import csv
import io
import json

import pytest
from dagster import AssetSpec, Definitions

from cdr_platform.analytics.commands import add_analytics_commands
from cdr_platform.analytics.owners import owners_report, unowned
from cdr_platform.analytics.sql_shell import interactive, open_marts_session, write_csv
from cdr_platform.defs.transform.chart import HourlyPoint, KpiRow, bar, hourly_chart, kpi_markdown
from tests.transform.conftest import BuiltLake

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cdr-platform")
    add_analytics_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def test_owners_report_lists_neighbours_and_flags_the_unowned() -> None:
    defs = Definitions(
        assets=[AssetSpec("a", owners=["team:x"], group_name="x"), AssetSpec("b", deps=["a"], group_name="x")]
    )
    rows = {row.asset_key: row for row in owners_report(defs)}
    assert rows["a"].downstream == ["b"] and rows["b"].upstream == ["a"]
    assert unowned(list(rows.values())) == ["b"]


def test_owners_command_prints_json_and_fails_without_owners(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["owners", "--json"])
    code = args.handler(args)
    rows = json.loads(capsys.readouterr().out)
    assert code == 0 and rows and all(row["owners"] for row in rows)


def test_sql_command_prints_csv_with_unprefixed_mart_names(
    built_lake: BuiltLake, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CDR_LAKE_CATALOG", built_lake.settings.resolved_lake_catalog)
    monkeypatch.setenv("CDR_LAKE_DATA_PATH", built_lake.settings.resolved_lake_data_path)
    args = _parser().parse_args(
        ["sql", "-c", "SELECT kpi, value_today FROM rpt_exec_kpis_intraday ORDER BY kpi"]
    )
    assert args.handler(args) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["kpi", "value_today"]
    assert [r[0] for r in rows[1:]] == ["active_members", "calls", "dropped_call_rate", "revenue"]


def test_sql_session_is_read_only_and_survives_errors(built_lake: BuiltLake) -> None:
    con = open_marts_session(built_lake.settings)
    try:
        lines = iter(["SELECT count(*) AS n", "FROM fct_calls;", "DROP TABLE fct_calls;", ".quit"])
        out = io.StringIO()
        assert interactive(con, read=lambda _: next(lines), out=out) == 0
        assert "error:" in out.getvalue()  # the DROP is refused: read-only
        buffer = io.StringIO()
        assert write_csv(con, "SELECT count(*) AS n FROM fct_calls", buffer) == 1
        assert int(buffer.getvalue().splitlines()[1]) == len(built_lake.full_refresh["fct_calls"])
    finally:
        con.close()


def test_chart_markdown() -> None:
    assert bar(0, 10) == "" and bar(10, 10) == "█" * 24 and bar(5, 10) == "█" * 12
    text = kpi_markdown(
        "2025-03-15 14:30",
        [
            KpiRow("Dropped-call rate", "ratio", 0.02723146747352496, 0.025, -0.2),
            KpiRow("Calls attempted", "calls", 10, None, None),
        ],
    )
    assert "| Dropped-call rate | 2.72% | 2.50% | -20.0% |" in text
    assert "| Calls attempted | 10 | n/a | n/a |" in text
    (row,) = hourly_chart([HourlyPoint(0, 4, 2, 1.5, 1.0)]).value.records
    assert row.data["hour"] == "00:00" and row.data["today"] == "█" * 24
    assert row.data["revenue today"] == "1.50"


def test_sql_answers_while_a_landing_run_writes(built_lake: BuiltLake) -> None:
    """An analyst's query and a landing writer in two other processes, on the same lake, at once."""
    import os
    import subprocess
    import sys

    from tests.lake.test_concurrent_processes import WRITER

    catalog = built_lake.settings.resolved_lake_catalog
    data_path = built_lake.settings.resolved_lake_data_path
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, catalog, data_path, "analyst-test", "analyst-test"],
        stderr=subprocess.PIPE,
        text=True,
    )
    env = {**os.environ, "CDR_LAKE_CATALOG": catalog, "CDR_LAKE_DATA_PATH": data_path}
    answers = []
    try:
        while writer.poll() is None or not answers:
            query = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "cdr_platform.cli",
                    "sql",
                    "-c",
                    "SELECT kpi FROM rpt_exec_kpis_intraday",
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert query.returncode == 0, query.stderr
            answers.append(query.stdout.splitlines()[0])
    finally:
        _, stderr = writer.communicate(timeout=240)
    assert writer.returncode == 0, stderr
    assert answers and set(answers) == {"kpi"}
    landed = built_lake.query("SELECT count(*) AS n FROM raw.usage_events WHERE source = 'analyst-test'")
    assert int(landed["n"][0]) == 400
