"""One dbt history per session: land, build, land late events, build incrementally, full refresh.

The first two builds run dbt through DbtCliResource (what the automation runs); the full refresh
runs through Dagster (``materialize`` of the dbt assets), so the wiring, the asset checks and the
chart metadata are exercised too. Tests then assert many things against these results.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dagster import AssetMaterialization, ExecuteInProcessResult, materialize

from cdr_platform.defs.resources import LakeResource
from cdr_platform.defs.transform.assets import build_dbt_assets
from cdr_platform.defs.transform.project import dbt_cli, dbt_project
from cdr_platform.events import Event
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.schema import ensure_schema
from cdr_platform.settings import Settings, load_settings
from tests.transform.dataset import AS_OF, churn_window_environment, generate_events, land_events

MART_KEYS: dict[str, list[str]] = {
    "fct_calls": ["call_key"],
    "fct_cell_kpis_hourly": ["cell_id", "hour_start"],
    "dim_cells": ["cell_id"],
    "dim_members": ["member_id"],
    "dim_plans": ["plan_id"],
    "fct_member_daily_usage": ["member_id", "usage_date"],
    "fct_engagement_daily": ["activity_date"],
    "fct_revenue_daily": ["revenue_date"],
    "rpt_churn_features": ["member_id"],
    "rpt_churn_model_backtest": ["cutoff_date"],
    "rpt_exec_kpis_intraday": ["kpi"],
    "rpt_exec_kpis_hourly": ["hour_of_day"],
}


@dataclass
class BuiltLake:
    settings: Settings
    events: list[Event]
    run_results: list[dict[str, Any]] = field(default_factory=list)
    incremental: dict[str, pd.DataFrame] = field(default_factory=dict)
    full_refresh: dict[str, pd.DataFrame] = field(default_factory=dict)
    dagster_result: ExecuteInProcessResult | None = None

    def query(self, sql: str) -> pd.DataFrame:
        con = connect_lake(
            self.settings.resolved_lake_catalog, self.settings.resolved_lake_data_path, read_only=True
        )
        try:
            con.execute("SET TimeZone = 'UTC'")
            return con.execute(sql).df()
        finally:
            con.close()

    def materializations(self) -> dict[str, AssetMaterialization]:
        assert self.dagster_result is not None
        return {
            m.asset_key.to_user_string(): m
            for m in self.dagster_result.asset_materializations_for_node("cdr_dbt_models")
        }


def _snapshot(built: BuiltLake) -> dict[str, pd.DataFrame]:
    return {
        name: built.query(f"SELECT * FROM marts.{name} ORDER BY {', '.join(keys)}").reset_index(drop=True)
        for name, keys in MART_KEYS.items()
    }


def _dbt_build(built: BuiltLake, target: Path, *args: str) -> None:
    invocation = dbt_cli(dbt_project()).cli(["build", *args], target_path=target, raise_on_error=False).wait()
    built.run_results.append(json.loads((target / "run_results.json").read_text()))
    assert invocation.is_successful(), f"dbt build {' '.join(args)} failed: see {target}"


def split_late(events: list[Event]) -> tuple[list[Event], list[Event]]:
    """(first landing, late landing): the last day lands late, plus every 7th event of the day before."""
    cutoff = AS_OF - timedelta(days=1)
    first, late = [], []
    for index, event in enumerate(events):
        is_late = event.occurred_at >= cutoff or (
            event.occurred_at >= cutoff - timedelta(days=1) and index % 7 == 0
        )
        (late if is_late else first).append(event)
    return first, late


@pytest.fixture(scope="session")
def built_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltLake]:
    root = tmp_path_factory.mktemp("dbt_lake")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CDR_LAKE_CATALOG", f"sqlite:{root / 'catalog.sqlite'}")
        env.setenv("CDR_LAKE_DATA_PATH", f"{root / 'files'}/")
        env.delenv("CDR_CONFIG_FILE", raising=False)
        for name, value in churn_window_environment().items():  # the churn windows fit this history
            env.setenv(name, value)
        settings = load_settings()
        built = BuiltLake(settings, generate_events())
        first, late = split_late(built.events)
        con = connect_lake(settings.resolved_lake_catalog, settings.resolved_lake_data_path)
        try:
            ensure_schema(con)
            land_events(con, first)
            _dbt_build(built, root / "target-1")
            land_events(con, late)
        finally:
            con.close()
        _dbt_build(built, root / "target-2")
        built.incremental = _snapshot(built)

        project = dbt_project()
        lake = LakeResource(
            catalog=settings.resolved_lake_catalog, data_path=settings.resolved_lake_data_path
        )
        built.dagster_result = materialize(
            [build_dbt_assets(project)],
            resources={"dbt": dbt_cli(project), "lake": lake},
            run_config={"ops": {"cdr_dbt_models": {"config": {"full_refresh": True}}}},
            raise_on_error=False,
        )
        built.full_refresh = _snapshot(built)
        yield built
