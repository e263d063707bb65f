"""The daily full build: every model and every dbt test, whatever automation did during the day."""

from typing import Any

from dagster import AssetsDefinition, ScheduleDefinition
from dagster_dbt import build_schedule_from_dbt_selection

DAILY_BUILD_CRON = "0 3 * * *"


def daily_dbt_build_schedule(dbt_models: AssetsDefinition) -> ScheduleDefinition:
    """``dbt build`` of the whole project at 03:00 UTC (job ``dbt_daily_build``)."""
    schedule: Any = build_schedule_from_dbt_selection(
        [dbt_models],
        job_name="dbt_daily_build",
        cron_schedule=DAILY_BUILD_CRON,
        dbt_select="fqn:*",
        execution_timezone="UTC",
        tags={"cdr/dbt": "daily_build"},
    )
    return schedule
