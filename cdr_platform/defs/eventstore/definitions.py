"""EventStoreDB landing: ``$all``, ``raw/member_events``, its landing job and sensor, the health of $all."""

from dagster import Definitions

from cdr_platform.defs.eventstore.assets import eventstore_all, land_member_events_job, raw_member_events
from cdr_platform.defs.eventstore.health import eventstore_all_health_sensor
from cdr_platform.defs.eventstore.sensors import eventstore_member_sensor

defs = Definitions(
    assets=[eventstore_all, raw_member_events],
    jobs=[land_member_events_job],
    sensors=[eventstore_member_sensor, eventstore_all_health_sensor],
)
