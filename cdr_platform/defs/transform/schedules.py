"""Schedules that run by default: the daily full build, and the dead letter's hourly re-processing.

Automation updates the marts when raw data lands, testing the recent window; the daily full build
rebuilds every model and runs every dbt test on every row whatever automation did during the day.
``raw/dead_letter`` has no upstream change to react to (landing runs write it), so a schedule
builds it: each run re-processes the open dead letters and records how many rows it holds.
"""

from typing import Any

from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    DefaultScheduleStatus,
    RunConfig,
    ScheduleDefinition,
    define_asset_job,
    in_process_executor,
)
from dagster_dbt import build_schedule_from_dbt_selection

from cdr_platform.defs.transform.assets import DbtBuildConfig

DAILY_BUILD_CRON = "0 3 * * *"
DEAD_LETTER_CRON = "50 * * * *"
RAW_DEAD_LETTER = AssetKey(["raw", "dead_letter"])


def daily_dbt_build_schedule(dbt_models: AssetsDefinition) -> ScheduleDefinition:
    """``dbt build`` of the whole project at 03:00 UTC (job ``dbt_daily_build``), running by default."""
    schedule: Any = build_schedule_from_dbt_selection(
        [dbt_models],
        job_name="dbt_daily_build",
        cron_schedule=DAILY_BUILD_CRON,
        dbt_select="fqn:*",
        execution_timezone="UTC",
        tags={"cdr/dbt": "daily_build"},
        config=RunConfig(ops={"cdr_dbt_models": DbtBuildConfig(full_tests=True)}),
        default_status=DefaultScheduleStatus.RUNNING,
    )
    return schedule


reprocess_dead_letter_job = define_asset_job(
    "reprocess_dead_letter",
    selection=AssetSelection.assets(RAW_DEAD_LETTER),
    executor_def=in_process_executor,
    description="Re-process the open dead letters (what now parses lands) and record the dead letter's size.",
)

dead_letter_schedule = ScheduleDefinition(
    name="reprocess_dead_letter_hourly",
    job=reprocess_dead_letter_job,
    cron_schedule=DEAD_LETTER_CRON,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)
