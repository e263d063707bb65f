"""Reconciliation of ``raw/usage_events`` with EventStoreDB, hour by hour of event time, with repair.

Each run judges the hours changed since the last one plus a look-back (``CDR_RECONCILE_LOOKBACK_HOURS``);
run the job with ``{"full": true}`` as the check's config for a full re-check of every hour.
"""

from datetime import UTC, datetime, timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetMaterialization,
    AssetSelection,
    Config,
    DefaultScheduleStatus,
    MetadataValue,
    ScheduleDefinition,
    asset_check,
    define_asset_job,
)
from pydantic import Field

from cdr_platform.defs.concurrency import LAKE_WRITER_POOL
from cdr_platform.defs.kinesis.assets import RAW_USAGE_EVENTS
from cdr_platform.defs.resources import EventStoreResource, LakeResource
from cdr_platform.lake.reconciliation import ReconciliationReport, reconcile_usage_events
from cdr_platform.settings import load_settings


class ReconciliationConfig(Config):
    full: bool = Field(
        default=False,
        description="Judge every hour of event time (a full re-check, cost grows with history) instead of "
        "the hours changed since the last run plus the look-back.",
    )
    lookback_hours: int | None = Field(
        default=None, ge=0, description="Default: the setting CDR_RECONCILE_LOOKBACK_HOURS."
    )


def hours_table(report: ReconciliationReport) -> str:
    lines = ["| hour (UTC) | in EventStoreDB | landed before | missing | repaired |", "|---|---|---|---|---|"]
    for h in report.hours:
        if h.missing or len(lines) < 50:
            hour = h.hour.strftime("%Y-%m-%d %H:00") if h.hour else "unparseable"
            lines.append(f"| {hour} | {h.in_eventstore} | {h.landed_before} | {h.missing} | {h.repaired} |")
    return "\n".join(lines)


def repaired_per_hour(report: ReconciliationReport) -> dict[str, int]:
    """Events repaired per hour of event time (UTC), only the hours that needed a repair."""
    return {
        (h.hour.strftime("%Y-%m-%d %H:00") if h.hour else "unparseable"): h.repaired
        for h in report.hours
        if h.repaired
    }


@asset_check(
    asset=RAW_USAGE_EVENTS,
    name="reconciled_with_eventstore",
    pool=LAKE_WRITER_POOL,
    description="Per hour of event time, compares the usage events landed from Kinesis with EventStoreDB, "
    "the truth. Gaps are replayed from EventStoreDB at once (exactly the missing positions); "
    "events the lake holds but EventStoreDB does not fail the check with their ids. A run that had to "
    "repair anything warns (severity WARN: lost events are an incident even when repaired), with the "
    "events repaired per hour in its metadata; it passes only when nothing was missing.",
)
def reconciled_with_eventstore(
    context: AssetCheckExecutionContext,
    config: ReconciliationConfig,
    eventstore: EventStoreResource,
    lake: LakeResource,
) -> AssetCheckResult:
    hours = config.lookback_hours
    lookback = timedelta(hours=load_settings().reconcile_lookback_hours if hours is None else hours)
    with eventstore.client() as client, lake.connect() as con:
        report = reconcile_usage_events(
            con,
            client,
            datetime.now(UTC) - timedelta(seconds=eventstore.settle_seconds),
            full=config.full,
            lookback=lookback,
            log=context.log.info,
        )
    if report.repaired:  # rows were added: downstream automation must see a new materialization
        context.op_execution_context.log_event(
            AssetMaterialization(
                RAW_USAGE_EVENTS,
                description="events repaired from EventStoreDB by reconciliation",
                metadata={"repaired": report.repaired},
            )
        )
    unrepaired = report.missing - report.repaired
    per_hour = repaired_per_hour(report)
    description = (
        f"{len(report.surplus_event_ids)} events in the lake are unknown to EventStoreDB"
        if report.surplus_event_ids
        else f"{report.missing} missing events found, {report.repaired} repaired from EventStoreDB"
        + (f" over {len(per_hour)} hours (an incident: what lost them?)" if report.repaired else "")
    )
    return AssetCheckResult(
        passed=report.ok and not report.repaired,
        severity=AssetCheckSeverity.ERROR if not report.ok else AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "repaired_per_hour": MetadataValue.json(per_hour),
            "max_repaired_in_an_hour": max(per_hour.values(), default=0),
            "full": config.full,
            "hours_checked": len(report.hours),
            "indexed_now": report.indexed,
            "missing": report.missing,
            "repaired": report.repaired,
            "unrepaired": unrepaired,
            "missing_event_ids": MetadataValue.json(report.missing_event_ids[:200]),
            "surplus": len(report.surplus_event_ids),
            "surplus_event_ids": MetadataValue.json(report.surplus_event_ids[:200]),
            "hours": MetadataValue.md(hours_table(report)),
        },
    )


reconcile_job = define_asset_job(
    "reconcile_usage_events",
    selection=AssetSelection.checks(reconciled_with_eventstore),
    description="Reconcile raw/usage_events with EventStoreDB and repair gaps: the hours changed since the "
    "last run plus a look-back; run config full: true re-checks every hour.",
)

reconcile_schedule = ScheduleDefinition(
    job=reconcile_job,
    cron_schedule="7 * * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Hourly reconciliation with EventStoreDB.",
)
