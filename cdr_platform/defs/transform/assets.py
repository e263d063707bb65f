"""The dbt models as Dagster assets: one ``dbt build`` per run, tests as asset checks.

Every materialization carries its table name (``dagster/table_name``), and after each model dbt's
adapter fetches the column schema with column-level lineage and, for tables and incremental
models, ``dagster/row_count`` (a count on a view would run its query, so views go without, except
the executives' KPIs, whose rows are read anyway). The executives' KPI asset also gets its values,
formatted, and a chart of today against the same time last week (see ``chart.py``).
"""

from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, AssetKey, Config, MetadataValue, Output
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

from cdr_platform.defs.resources import LakeResource
from cdr_platform.defs.transform.chart import HourlyPoint, KpiRow, hourly_chart, kpi_markdown, rounded
from cdr_platform.defs.transform.project import DBT_POOL
from cdr_platform.defs.transform.translator import CdrDbtTranslator

EXEC_KPIS = AssetKey(["marts", "rpt_exec_kpis_intraday"])
ROW_COUNT = "dagster/row_count"
TABLE_NAME = "dagster/table_name"


class DbtBuildConfig(Config):
    """``full_refresh`` rebuilds incremental models from the whole raw history."""

    full_refresh: bool = False


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


def with_table_name(context: AssetExecutionContext, event: Any) -> Any:
    """The materialization with its table's name, as the asset's definition states it."""
    if not isinstance(event, Output):
        return event
    spec = context.assets_def.specs_by_key[context.asset_key_for_output(event.output_name)]
    if TABLE_NAME not in spec.metadata:
        return event
    return event.with_metadata({**event.metadata, TABLE_NAME: spec.metadata[TABLE_NAME]})


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
            events = dbt.cli(args, context=context).stream().fetch_column_metadata().fetch_row_counts()
            for event in events:
                event = with_table_name(context, event)
                if isinstance(event, Output) and context.asset_key_for_output(event.output_name) == EXEC_KPIS:
                    event = event.with_metadata({**event.metadata, **exec_kpi_metadata(lake)})
                yield event

    return cdr_dbt_models
