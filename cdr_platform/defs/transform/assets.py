"""The dbt models as Dagster assets: one ``dbt build`` per run, tests as asset checks.

Every materialization carries its table name (``dagster/table_name``) and, from dbt's adapter, the
column schema with column-level lineage. Tables and incremental models also get
``dagster/row_count``, counted on one read-only lake connection per run as each model finishes
(dagster-dbt's ``fetch_row_counts`` chained after ``fetch_column_metadata`` deadlocks on the
duckdb adapter; a count on a view would run its query, so views go without, except the
executives' KPIs, whose rows are read anyway). The executives' KPI asset also gets its values,
formatted, and a chart of today against the same time last week (see ``chart.py``).
"""

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import duckdb
from dagster import AssetExecutionContext, AssetKey, Config, MetadataValue, Output
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

from cdr_platform.defs.resources import LakeResource
from cdr_platform.defs.transform.chart import HourlyPoint, KpiRow, hourly_chart, kpi_markdown, rounded
from cdr_platform.defs.transform.project import DBT_POOL
from cdr_platform.defs.transform.translator import CdrDbtTranslator

EXEC_KPIS = AssetKey(["marts", "rpt_exec_kpis_intraday"])
ROW_COUNT = "dagster/row_count"
TABLE_NAME = "dagster/table_name"
MATERIALIZED = "dagster-dbt/materialization_type"
COUNTED = ("table", "incremental")
"""Materializations whose rows are counted; a view's count would run its query."""


class DbtBuildConfig(Config):
    """``full_refresh`` rebuilds incremental models from the whole raw history; ``full_tests`` runs
    every data test on every row (the daily build), where a run otherwise tests the recent window."""

    full_refresh: bool = False
    full_tests: bool = False


def exec_kpi_metadata(lake: LakeResource) -> dict[str, Any]:
    """The executive KPIs read back from the lake: the KPI table, the hourly chart, rounded values."""
    with lake.connect(read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        kpi_rows = con.execute(
            "SELECT kpi, kpi_label, unit, value_today, value_same_time_last_week, change_ratio, "
            "strftime(as_of, '%Y-%m-%d %H:%M') FROM marts.rpt_exec_kpis_intraday ORDER BY kpi_order"
        ).fetchall()
        hour_rows = con.execute(
            "SELECT hour_of_day, calls_today, calls_same_time_last_week, cumulative_revenue_today, "
            "cumulative_revenue_same_time_last_week FROM marts.rpt_exec_kpis_hourly ORDER BY hour_of_day"
        ).fetchall()
    as_of = kpi_rows[0][6] if kpi_rows else "n/a"
    kpis = [KpiRow(label, unit, today, week, change) for _, label, unit, today, week, change, _ in kpi_rows]
    headline: dict[str, Any] = {
        f"{kpi}_today{'_pct' if unit == 'ratio' else ''}": rounded(float(today), unit)
        for kpi, _, unit, today, _, _, _ in kpi_rows
        if today is not None
    }
    return {
        "kpis": MetadataValue.md(kpi_markdown(as_of, kpis)),
        "calls_per_hour": hourly_chart([HourlyPoint(*row) for row in hour_rows]),
        "as_of": as_of,
        **headline,
        ROW_COUNT: MetadataValue.int(len(kpi_rows)),
    }


class RowCounter:
    """Counts the rows of finished tables on one read-only lake connection, opened at the first count."""

    def __init__(self, lake: LakeResource, log: Any) -> None:
        self._lake, self._log = lake, log
        self._stack = ExitStack()
        self._con: duckdb.DuckDBPyConnection | None = None

    def count(self, relation: str) -> int | None:
        """``count(*)`` of ``relation`` (``schema.name``); None, logged, when the lake cannot say."""
        try:
            if self._con is None:
                self._con = self._stack.enter_context(self._lake.connect(read_only=True))
            row = self._con.execute(f"SELECT count(*) FROM {relation}").fetchone()
        except duckdb.Error as exc:
            self._log.warning(f"no row count for {relation}: {exc}")
            return None
        return int(row[0]) if row else None

    def close(self) -> None:
        self._stack.close()


def with_table_metadata(
    context: AssetExecutionContext, event: Any, rows: RowCounter, lake: LakeResource
) -> Any:
    """The materialization with its table's name, its row count (tables and incremental models),
    and for the executives' KPIs their values and chart."""
    if not isinstance(event, Output):
        return event
    key = context.asset_key_for_output(event.output_name)
    spec_metadata = context.assets_def.specs_by_key[key].metadata
    extra: dict[str, Any] = {}
    if TABLE_NAME in spec_metadata:
        extra[TABLE_NAME] = spec_metadata[TABLE_NAME]
    materialized = spec_metadata.get(MATERIALIZED)
    materialized = getattr(materialized, "value", materialized)
    if materialized in COUNTED:
        count = rows.count(".".join(key.path))
        if count is not None:
            extra[ROW_COUNT] = MetadataValue.int(count)
    if key == EXEC_KPIS:
        extra.update(exec_kpi_metadata(lake))
    return event.with_metadata({**event.metadata, **extra}) if extra else event


def build_dbt_assets(project: DbtProject) -> Any:
    """The multi-asset over every dbt model of ``project``."""

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=CdrDbtTranslator(),
        name="cdr_dbt_models",
        pool=DBT_POOL,
    )
    def cdr_dbt_models(
        context: AssetExecutionContext, dbt: DbtCliResource, lake: LakeResource, config: DbtBuildConfig
    ) -> Iterator[Any]:
        args = ["build", *(["--full-refresh"] if config.full_refresh else [])]
        # profiles.yml and the dbt plugin find this run's lake here, and the tests their window
        with lake.dbt_environment(full_tests=config.full_tests or config.full_refresh):
            rows = RowCounter(lake, context.log)
            try:
                for event in dbt.cli(args, context=context).stream().fetch_column_metadata():
                    yield with_table_metadata(context, event, rows, lake)
            finally:
                rows.close()

    return cdr_dbt_models
