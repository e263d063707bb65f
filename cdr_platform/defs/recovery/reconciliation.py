"""Reconciliation of ``raw/usage_events`` with EventStoreDB, hour by hour of event time, with repair."""

from datetime import UTC, datetime, timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetMaterialization,
    AssetSelection,
    DefaultScheduleStatus,
    MetadataValue,
    ScheduleDefinition,
    asset_check,
    define_asset_job,
)

from cdr_platform.defs.concurrency import LAKE_WRITER_POOL
from cdr_platform.defs.kinesis.assets import RAW_USAGE_EVENTS
from cdr_platform.defs.resources import EventStoreResource, LakeResource
from cdr_platform.lake.reconciliation import ReconciliationReport, reconcile_usage_events


def hours_table(report: ReconciliationReport) -> str:
    lines = ["| hour (UTC) | in EventStoreDB | landed before | missing | repaired |", "|---|---|---|---|---|"]
    for h in report.hours:
        if h.missing or len(lines) < 50:
            hour = h.hour.strftime("%Y-%m-%d %H:00") if h.hour else "unparseable"
            lines.append(f"| {hour} | {h.in_eventstore} | {h.landed_before} | {h.missing} | {h.repaired} |")
    return "\n".join(lines)


@asset_check(
    asset=RAW_USAGE_EVENTS,
    name="reconciled_with_eventstore",
    pool=LAKE_WRITER_POOL,
    description="Per hour of event time, compares the usage events landed from Kinesis with EventStoreDB, "
    "the truth. Gaps are replayed from EventStoreDB at once (exactly the missing positions); "
    "events the lake holds but EventStoreDB does not fail the check with their ids.",
)
def reconciled_with_eventstore(
    context: AssetCheckExecutionContext, eventstore: EventStoreResource, lake: LakeResource
) -> AssetCheckResult:
    with eventstore.client() as client, lake.connect() as con:
        report = reconcile_usage_events(
            con,
            client,
            datetime.now(UTC) - timedelta(seconds=eventstore.settle_seconds),
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
    description = (
        f"{len(report.surplus_event_ids)} events in the lake are unknown to EventStoreDB"
        if report.surplus_event_ids
        else f"{report.missing} missing events found, {report.repaired} repaired from EventStoreDB"
    )
    return AssetCheckResult(
        passed=report.ok,
        severity=AssetCheckSeverity.ERROR,
        description=description,
        metadata={
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
    description="Reconcile raw/usage_events with EventStoreDB and repair gaps.",
)

reconcile_schedule = ScheduleDefinition(
    job=reconcile_job,
    cron_schedule="7 * * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Hourly reconciliation with EventStoreDB.",
)
