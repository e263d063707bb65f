"""Lake maintenance: the hourly job that compacts small files and expires old snapshots.

Owned by the data platform team. The op takes the ``lake_writer`` pool like every writer, so it
never merges files under a landing run. It records files and bytes of every table before and after
as the step's output metadata, and as an observation of each raw asset (an observation, not a
materialization: no row changed, so dbt's automation must not run because of it).
"""

from datetime import UTC, datetime, timedelta

from dagster import (
    AssetKey,
    AssetObservation,
    Config,
    DefaultScheduleStatus,
    MetadataValue,
    OpExecutionContext,
    Output,
    ScheduleDefinition,
    job,
    op,
)
from pydantic import Field

from cdr_platform.defs.concurrency import POOLS
from cdr_platform.defs.resources import LakeResource
from cdr_platform.defs.teams import DATA_PLATFORM, team
from cdr_platform.lake.maintenance import MaintenanceReport, maintain_lake
from cdr_platform.settings import load_settings

OWNER_TAGS = {"team": DATA_PLATFORM}


class LakeMaintenanceConfig(Config):
    snapshot_retention_hours: int | None = Field(
        default=None,
        ge=0,
        description="Expire snapshots older than this many hours (time travel reaches that far back); "
        "default: the setting CDR_LAKE_SNAPSHOT_RETENTION_HOURS.",
    )


def files_table(report: MaintenanceReport) -> str:
    lines = ["| table | files before | files after | bytes before | bytes after |", "|---|---|---|---|---|"]
    for before, after in zip(report.before, report.after, strict=True):
        lines.append(f"| {before.table} | {before.files} | {after.files} | {before.bytes} | {after.bytes} |")
    return "\n".join(lines)


@op(
    pool=POOLS.maintenance,
    tags=OWNER_TAGS,
    description="Flush inlined rows, merge small files, expire snapshots older than the retention and "
    "delete files no snapshot references. Rows are never changed.",
)
def maintain_lake_files(
    context: OpExecutionContext, config: LakeMaintenanceConfig, lake: LakeResource
) -> Output:
    hours = config.snapshot_retention_hours
    retention = timedelta(hours=load_settings().lake_snapshot_retention_hours if hours is None else hours)
    with lake.connect() as con:
        report = maintain_lake(con, retention, datetime.now(UTC))
    before, after = report.total("before"), report.total("after")
    context.log.info(
        f"lake files {before.files} -> {after.files}, bytes {before.bytes} -> {after.bytes}, "
        f"snapshots {report.snapshots_before} -> {report.snapshots_after}, "
        f"{report.files_deleted} files deleted"
    )
    for table_before, table_after in zip(report.before, report.after, strict=True):
        schema, name = table_before.table.split(".")
        if schema == "raw":
            context.log_event(
                AssetObservation(
                    AssetKey([schema, name]),
                    description="lake maintenance",
                    metadata={
                        "files_before": table_before.files,
                        "files_after": table_after.files,
                        "bytes_before": table_before.bytes,
                        "bytes_after": table_after.bytes,
                    },
                )
            )
    return Output(
        None,
        metadata={
            "files_before": before.files,
            "files_after": after.files,
            "bytes_before": before.bytes,
            "bytes_after": after.bytes,
            "snapshots_before": report.snapshots_before,
            "snapshots_after": report.snapshots_after,
            "files_deleted": report.files_deleted,
            "retention_hours": retention.total_seconds() / 3600,
            "tables": MetadataValue.md(files_table(report)),
        },
    )


@job(
    tags=OWNER_TAGS,
    metadata={"owners": MetadataValue.json(team(DATA_PLATFORM).owners)},
    description="Compact the lake's small files and expire snapshots older than the retention "
    "(owned by the data platform team).",
)
def maintain_lake_job() -> None:
    maintain_lake_files()


maintain_lake_schedule = ScheduleDefinition(
    job=maintain_lake_job,
    cron_schedule="37 * * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Hourly lake maintenance, away from the reconciliation at :07.",
)
