"""The dbt models as Dagster assets: one ``dbt build`` per run, tests as asset checks.

Column metadata (schema and column-level lineage) is fetched after each model; the executives'
KPI asset also gets a Markdown chart of today against the same time last week.
"""

from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, AssetKey, Config, MetadataValue, Output
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

from cdr_platform.defs.resources import LakeResource
from cdr_platform.defs.transform.chart import HourlyPoint, KpiRow, kpi_markdown
from cdr_platform.defs.transform.project import DBT_POOL
from cdr_platform.defs.transform.translator import CdrDbtTranslator

EXEC_KPIS = AssetKey(["marts", "rpt_exec_kpis_intraday"])


class DbtBuildConfig(Config):
    """``full_refresh`` rebuilds incremental models from the whole raw history."""

    full_refresh: bool = False


def exec_kpi_metadata(lake: LakeResource) -> dict[str, Any]:
    """Chart and headline values of the executive KPIs, read back from the lake."""
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
    hours = [HourlyPoint(*row) for row in hour_rows]
    headline: dict[str, Any] = {
        f"{kpi}_today": float(today) for kpi, _, _, today, _, _, _ in kpi_rows if today is not None
    }
    return {"kpi_chart": MetadataValue.md(kpi_markdown(as_of, kpis, hours)), "as_of": as_of, **headline}


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
        with lake.dbt_environment():  # profiles.yml and the dbt plugin find this run's lake here
            for event in dbt.cli(args, context=context).stream().fetch_column_metadata():
                if isinstance(event, Output) and context.asset_key_for_output(event.output_name) == EXEC_KPIS:
                    event = event.with_metadata({**event.metadata, **exec_kpi_metadata(lake)})
                yield event

    return cdr_dbt_models
