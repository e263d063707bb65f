"""Recovery: the dead letter, reconciliation with its hourly schedule, replay and new-consumer streams."""

from dagster import Definitions

from cdr_platform.defs.recovery.dead_letter import raw_dead_letter
from cdr_platform.defs.recovery.reconciliation import (
    reconcile_job,
    reconcile_schedule,
    reconciled_with_eventstore,
)
from cdr_platform.defs.recovery.replay import replay_raw_layer
from cdr_platform.defs.recovery.streams import request_stream

defs = Definitions(
    assets=[raw_dead_letter],
    asset_checks=[reconciled_with_eventstore],
    jobs=[reconcile_job, replay_raw_layer, request_stream],
    schedules=[reconcile_schedule],
)
