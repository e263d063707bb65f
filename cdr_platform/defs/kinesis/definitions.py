"""Kinesis landing: the usage stream, ``raw/usage_events``, its landing job and sensors, relay_lag."""

from dagster import Definitions

from cdr_platform.defs.kinesis.assets import land_usage_events_job, raw_usage_events, usage_stream
from cdr_platform.defs.kinesis.health import relay_lag, usage_stream_health_sensor
from cdr_platform.defs.kinesis.sensors import kinesis_usage_sensor

defs = Definitions(
    assets=[usage_stream, raw_usage_events],
    asset_checks=[relay_lag],
    jobs=[land_usage_events_job],
    sensors=[kinesis_usage_sensor, usage_stream_health_sensor],
)
