"""Request a member-events landing run when $all holds a member event past the landed position."""

import json

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from cdr_platform.defs.eventstore.assets import MEMBER_CONSUMER, land_member_events_job
from cdr_platform.defs.landing import (
    PROBE_DEADLINE_S,
    EndpointHungError,
    landing_run_in_flight,
    probe_within,
    read_landed,
)
from cdr_platform.defs.resources import EventStoreResource, LakeResource
from cdr_platform.errors import PlatformError
from cdr_platform.lake.landing import load_eventstore_checkpoint
from cdr_platform.sources.eventstore_reader import latest_position

CURSOR_VERSION = 1


@sensor(
    job=land_member_events_job,
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description="Compares the newest member event's commit position in $all with the position committed in "
    "the lake, and requests a landing run when it is ahead.",
)
def eventstore_member_sensor(
    context: SensorEvaluationContext, eventstore: EventStoreResource, lake: LakeResource
) -> SensorResult | SkipReason:
    if landing_run_in_flight(context.instance, land_member_events_job.name):
        return SkipReason("a landing run is already queued or in progress")
    landed = read_landed(lake, lambda con: load_eventstore_checkpoint(con, MEMBER_CONSUMER), None)
    if isinstance(landed, SkipReason):
        return landed

    def newest_member_event() -> int | None:
        with eventstore.client() as client:
            return latest_position(client, eventstore.member_event_types, timeout_s=PROBE_DEADLINE_S / 2)

    try:
        newest = probe_within(eventstore.endpoint_name, newest_member_event)
    except PlatformError as exc:
        return SkipReason(f"{eventstore.endpoint_name} unreachable: {exc}")
    except EndpointHungError as exc:
        return SkipReason(str(exc))
    cursor = json.dumps({"v": CURSOR_VERSION, "landed": landed, "newest": newest})
    if newest is None or (landed is not None and newest <= landed):
        return SensorResult(skip_reason=SkipReason("no member event past the landed position"), cursor=cursor)
    return SensorResult(run_requests=[RunRequest()], cursor=cursor)
