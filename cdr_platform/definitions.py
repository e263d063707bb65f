"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here."""

from __future__ import annotations

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus, Definitions

from cdr_platform.defs.eventstore.assets import raw_member_events
from cdr_platform.defs.eventstore.sensors import eventstore_member_sensor, land_member_events_job
from cdr_platform.defs.kinesis.assets import raw_usage_events
from cdr_platform.defs.kinesis.sensors import kinesis_usage_sensor, land_usage_events_job
from cdr_platform.defs.recovery.dead_letter import raw_dead_letter
from cdr_platform.defs.recovery.reconciliation import (
    reconcile_job,
    reconcile_schedule,
    reconciled_with_eventstore,
)
from cdr_platform.defs.recovery.replay import replay_raw_layer
from cdr_platform.defs.recovery.streams import request_stream
from cdr_platform.defs.resources import build_resources
from cdr_platform.defs.sources import source_specs
from cdr_platform.defs.transform import transform_definitions_parts
from cdr_platform.settings import Settings, load_settings

marts_automation_sensor = AutomationConditionSensorDefinition(
    "marts_automation",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,  # Dagster's implicit one starts stopped
    minimum_interval_seconds=30,
    description="Evaluates the dbt models' automation conditions: marts update soon after raw data lands.",
)


def build_definitions(settings: Settings | None = None) -> Definitions:
    """Definitions wired from the settings (the environment's by default; a bad one fails here, at load)."""
    settings = settings or load_settings()
    transform = transform_definitions_parts(settings)
    return Definitions(
        assets=[*source_specs, raw_usage_events, raw_member_events, raw_dead_letter, *transform["assets"]],
        asset_checks=[reconciled_with_eventstore],
        jobs=[land_usage_events_job, land_member_events_job, reconcile_job, replay_raw_layer, request_stream],
        schedules=[reconcile_schedule, *transform["schedules"]],
        sensors=[kinesis_usage_sensor, eventstore_member_sensor, marts_automation_sensor],
        resources={**build_resources(settings), **transform["resources"]},
    )


defs = build_definitions()
