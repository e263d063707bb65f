"""Standard metadata in the Dagster UI: descriptions, exposures, table names and row counts, the
exec KPIs shown inline, and assets that get built by default (``dim_date``, ``raw/dead_letter``)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    DefaultScheduleStatus,
    Definitions,
    evaluate_automation_conditions,
)

from cdr_platform.defs.teams import teams
from cdr_platform.defs.transform.chart import INLINE_MARKDOWN_LIMIT
from cdr_platform.defs.transform.project import dbt_project
from tests.transform.conftest import BuiltLake

DIM_DATE = AssetKey(["marts", "dim_date"])
DBT_LAYERS = {"staging", "intermediate", "marts"}
LONG_FLOAT = re.compile(r"\d\.\d{5,}")


@pytest.fixture(scope="module")
def defs() -> Definitions:
    from cdr_platform.definitions import defs

    return defs


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(dbt_project().manifest_path.read_text())


@pytest.mark.integration
def test_checks_are_described_and_descriptions_hold_no_sql(defs: Definitions, manifest: dict) -> None:
    graph = defs.resolve_asset_graph()
    specs = [spec for asset in graph.assets_defs for spec in asset.check_specs]
    assert len(specs) > 100
    assert [s.key.to_user_string() for s in specs if not (s.description or "").strip()] == []
    descriptions = {s.name: s.description for s in specs}
    assert descriptions["unique_fct_calls_call_key"] == "`call_key` is unique in fct_calls."
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    for key in graph.get_all_asset_keys():
        description = graph.get(key).description or ""
        assert "Raw SQL" not in description and "{{" not in description, key
        if key.path[-1] in models:
            assert models[key.path[-1]]["raw_code"].strip() not in description


@pytest.mark.integration
def test_exposures_are_owned_assets_downstream_of_the_marts_they_read(
    defs: Definitions, manifest: dict
) -> None:
    graph = defs.resolve_asset_graph()
    exposures = {k: graph.get(k) for k in graph.get_all_asset_keys() if k.path[0] == "exposures"}
    assert {k.path[-1] for k in exposures} == {e["name"] for e in manifest["exposures"].values()}
    for exposure in manifest["exposures"].values():
        node = exposures[AssetKey(["exposures", exposure["name"]])]
        read = {AssetKey(["marts", parent.rsplit(".", 1)[-1]]) for parent in exposure["depends_on"]["nodes"]}
        assert set(node.parent_keys) == read
        team = teams()[node.group_name or ""]
        assert list(node.owners) == team.owners and team.email == exposure["owner"]["email"]
        assert not node.is_materializable  # consumers outside the warehouse: shown, never built here


@pytest.mark.integration
def test_schedules_run_by_default(defs: Definitions) -> None:
    schedules = {s.name: s for s in defs.schedules or []}  # type: ignore[union-attr]
    for name in ("dbt_daily_build_schedule", "reprocess_dead_letter_hourly"):
        assert schedules[name].default_status == DefaultScheduleStatus.RUNNING
    job = defs.resolve_job_def(schedules["reprocess_dead_letter_hourly"].job_name)
    assert job.asset_layer.selected_asset_keys == {AssetKey(["raw", "dead_letter"])}


@pytest.mark.integration
def test_dim_date_automation_fires_when_missing_and_then_rests(defs: Definitions) -> None:
    """A model with no upstream cannot wait for an upstream change: it is built when missing."""
    instance = DagsterInstance.ephemeral()
    first = evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.get_num_requested(DIM_DATE) == 1
    instance.report_runless_asset_event(AssetMaterialization(DIM_DATE))
    second = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert second.get_num_requested(DIM_DATE) == 0


@pytest.mark.integration
def test_dead_letter_is_built_by_its_job_with_a_row_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cdr_platform.definitions import build_definitions
    from cdr_platform.settings import load_settings

    monkeypatch.setenv("CDR_LAKE_CATALOG", f"sqlite:{tmp_path / 'catalog.sqlite'}")
    monkeypatch.setenv("CDR_LAKE_DATA_PATH", f"{tmp_path / 'files'}/")
    defs = build_definitions(load_settings())
    result = defs.resolve_job_def("reprocess_dead_letter").execute_in_process(
        instance=DagsterInstance.ephemeral()
    )
    assert result.success
    (materialization,) = [e.materialization for e in result.get_asset_materialization_events()]
    assert materialization.asset_key == AssetKey(["raw", "dead_letter"])
    assert materialization.metadata["dagster/row_count"].value == 0
    assert "dagster/table_name" in materialization.metadata


@pytest.mark.integration
@pytest.mark.slow
def test_dbt_materializations_carry_table_name_and_row_count(built_lake: BuiltLake, manifest: dict) -> None:
    materialized = built_lake.materializations()
    tables = {
        f"{n['schema']}/{n['name']}"
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["config"]["materialized"] in ("table", "incremental")
    }
    assert tables and tables <= set(materialized)
    for key, event in materialized.items():
        assert event.metadata["dagster/table_name"].value.endswith(key.replace("/", ".")), key
        if key in tables:
            expected = built_lake.query(f"SELECT count(*) AS n FROM {key.replace('/', '.')}")["n"][0]
            assert event.metadata["dagster/row_count"].value == expected, key


@pytest.mark.integration
@pytest.mark.slow
def test_exec_kpis_show_inline_with_formatted_values(built_lake: BuiltLake) -> None:
    metadata = built_lake.materializations()["marts/rpt_exec_kpis_intraday"].metadata
    kpis = metadata["kpis"].value
    assert len(kpis) < INLINE_MARKDOWN_LIMIT  # the UI shows it inline, not behind "[Show Markdown]"
    assert "Dropped-call rate" in kpis and "%" in kpis and not LONG_FLOAT.search(kpis)
    hours = metadata["calls_per_hour"].value.records
    assert hours and any("█" in row.data["today"] for row in hours)
    assert metadata["dagster/row_count"].value == 4
    rate = metadata["dropped_call_rate_today_pct"].value
    assert 0 <= rate <= 100 and round(rate, 2) == rate
    assert metadata["calls_today"].value > 0 and isinstance(metadata["calls_today"].value, int)


@pytest.mark.integration
@pytest.mark.slow
def test_make_docs_builds_offline_and_serves(tmp_path: Path) -> None:
    """What ``make docs`` runs, before anything has landed: the site builds, no lake is created, it serves."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDR_")}
    env["CDR_DATA_DIR"] = str(tmp_path / "data")
    command = [sys.executable, "-m", "cdr_platform.defs.transform.docs", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--target", str(tmp_path / "docs")],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600  # a loaded 2-core machine: dbt parses, then serves
        page = b""
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as response:
                    page = response.read()
                    break
            except OSError:
                time.sleep(2)
        assert server.poll() is None, "the docs command exited instead of serving"
        assert b"dbt" in page and len(page) > 100_000  # dbt's docs page, self-contained: no CDN
        for served in ("manifest.json", "catalog.json"):  # what the page loads
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{served}", timeout=30) as response:
                document = json.loads(response.read())
            if served == "manifest.json":
                assert "model.cdr_platform.rpt_exec_kpis_intraday" in document["nodes"]
        assert not (tmp_path / "data" / "lake").exists()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
