"""The dbt models in Dagster: one graph from the sources to the KPIs, owned, automated, checked."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from dagster import AssetKey, DefaultScheduleStatus, Definitions

from cdr_platform.analytics.owners import owners_report, unowned
from cdr_platform.defs.teams import teams
from cdr_platform.defs.transform.translator import EXEC_FRESHNESS
from tests.transform.conftest import BuiltLake

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SNAPSHOT = Path(__file__).with_name("asset_graph_snapshot.json")
DBT_LAYERS = {"staging", "intermediate", "marts"}


@pytest.fixture(scope="module")
def defs() -> Definitions:
    """The code location's definitions: landing, recovery and transform together."""
    from cdr_platform.definitions import defs

    return defs


def test_no_asset_lacks_an_owner(defs: Definitions) -> None:
    rows = owners_report(defs)
    assert not unowned(rows)
    assert {row.group for row in rows} <= set(teams())
    # one owner form on every asset, dbt or Python: the team, then its email from _groups.yml
    assert all(row.owners == teams()[row.group].owners for row in rows if row.group)


def test_one_graph_from_kinesis_to_the_exec_kpis(defs: Definitions) -> None:
    graph = defs.resolve_asset_graph()
    exec_kpis = AssetKey(["marts", "rpt_exec_kpis_intraday"])
    ancestors = graph.get(exec_kpis).parent_keys
    seen, frontier = set(ancestors), list(ancestors)
    while frontier:
        for parent in graph.get(frontier.pop()).parent_keys:
            if parent not in seen:
                seen.add(parent)
                frontier.append(parent)
    assert {AssetKey(["raw", "usage_events"]), AssetKey(["kinesis", "usage_stream"])} <= seen
    assert (
        AssetKey(["raw", "member_events"])
        in graph.get(AssetKey(["staging", "stg_raw__member_events"])).parent_keys
    )


def test_automation_freshness_and_checks(defs: Definitions) -> None:
    graph = defs.resolve_asset_graph()
    dbt_keys = [k for k in graph.get_all_asset_keys() if k.path[0] in DBT_LAYERS]
    assert len(dbt_keys) == 31
    for key in dbt_keys:
        node = graph.get(key)
        assert node.automation_condition is not None
        expected = "on new data" if node.parent_keys else "when missing"  # dim_date has no upstream
        assert expected in (node.automation_condition.get_label() or ""), key
    assert graph.get(AssetKey(["marts", "rpt_exec_kpis_intraday"])).freshness_policy == EXEC_FRESHNESS
    assert graph.get(AssetKey(["marts", "fct_calls"])).freshness_policy is None
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert ("marts/fct_calls", "unique_fct_calls_call_key") in checks


def test_daily_build_schedule(defs: Definitions) -> None:
    schedules = {s.name: s for s in defs.schedules or []}  # type: ignore[union-attr]
    (schedule,) = [s for s in schedules.values() if s.job_name == "dbt_daily_build"]
    assert schedule.cron_schedule == "0 3 * * *"
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    run_config = defs.resolve_job_def("dbt_daily_build").run_config or {}
    assert run_config["ops"]["cdr_dbt_models"]["config"]["full_tests"] is True  # tests every row


def test_exec_kpis_carry_a_chart_and_models_their_columns(built_lake: BuiltLake) -> None:
    materialized = built_lake.materializations()
    exec_kpis = materialized["marts/rpt_exec_kpis_intraday"].metadata
    table = exec_kpis["kpis"].value
    assert "Dropped-call rate" in table and "Same time last week" in table
    assert any("█" in row.data["today"] for row in exec_kpis["calls_per_hour"].value.records)
    assert exec_kpis["calls_today"].value > 0
    calls = materialized["marts/fct_calls"].metadata
    assert "dagster/column_schema" in calls
    checks = built_lake.dagster_result.get_asset_check_evaluations()  # type: ignore[union-attr]
    assert checks and all(c.passed for c in checks)


def test_asset_graph_snapshot(defs: Definitions) -> None:
    """Keys, upstream keys, owners, group, kinds and automation of every asset; review the diff.

    Regenerate with ``UPDATE_SNAPSHOTS=1 pytest tests/transform/test_dagster_wiring.py``.
    """
    graph = defs.resolve_asset_graph()
    current = {
        key.to_user_string(): {
            "upstream": sorted(k.to_user_string() for k in graph.get(key).parent_keys),
            "owners": list(graph.get(key).owners),
            "group": graph.get(key).group_name,
            "kinds": sorted(graph.get(key).kinds),
            "automation": (
                graph.get(key).automation_condition.get_label()
                if graph.get(key).automation_condition
                else None
            ),
        }
        for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string())
    }
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(current, indent=2) + "\n")
    assert current == json.loads(SNAPSHOT.read_text()), "lineage or ownership changed: set UPDATE_SNAPSHOTS=1"
