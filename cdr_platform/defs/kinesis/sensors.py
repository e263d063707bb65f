"""A cheap sensor: request a landing run when any readable shard has data past its checkpoint.

With shard groups (a Postgres catalog, ``KinesisResource.shard_groups`` > 1), one run per group that
has news and no run in flight, tagged ``cdr/landing=kinesis/<group>`` (one run per value at a time).
"""

import json

from botocore.exceptions import BotoCoreError, ClientError
from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from cdr_platform.defs.concurrency import LANDING_TAG, kinesis_landing_tag
from cdr_platform.defs.kinesis.assets import RAW_USAGE_EVENTS, land_usage_events_job
from cdr_platform.defs.landing import EndpointHungError, landing_run_in_flight, probe_within, read_landed
from cdr_platform.defs.resources import KinesisResource, LakeResource
from cdr_platform.lake.kinesis_landing import shard_group
from cdr_platform.lake.landing import load_shard_checkpoints
from cdr_platform.sources.kinesis_reader import ShardPosition, list_shards, readable_shards, shard_has_news

CURSOR_VERSION = 1


@sensor(
    job=land_usage_events_job,
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description="Lists shards, compares them with the checkpoints committed in the lake, and requests a "
    "landing run when one has new records. Never parses payloads; runs do the work.",
)
def kinesis_usage_sensor(
    context: SensorEvaluationContext, kinesis: KinesisResource, lake: LakeResource
) -> SensorResult | SkipReason:
    groups = kinesis.shard_groups
    idle = [
        g
        for g in range(groups)
        if not landing_run_in_flight(
            context.instance, land_usage_events_job.name, kinesis_landing_tag(g, groups)
        )
    ]
    if not idle:
        return SkipReason(
            "a landing run is already queued or in progress" + (" for every group" * (groups > 1))
        )
    landed = read_landed(lake, lambda con: load_shard_checkpoints(con, kinesis.usage_stream), {})
    if isinstance(landed, SkipReason):
        return landed
    positions = {k: ShardPosition(v.sequence_number, v.shard_ended) for k, v in landed.items()}
    client = kinesis.probe_client()

    def shards_with_news() -> list[tuple[str, int]]:
        shards = readable_shards(list_shards(client, kinesis.usage_stream), positions)
        return [
            (s.shard_id, shard_group(s, groups))
            for s in shards
            if shard_group(s, groups) in idle
            and shard_has_news(client, kinesis.usage_stream, s, positions.get(s.shard_id))
        ]

    try:
        with_news = probe_within(kinesis.endpoint_name, shards_with_news)
    except (BotoCoreError, ClientError) as exc:
        return SkipReason(f"{kinesis.endpoint_name} unreachable: {exc}")
    except EndpointHungError as exc:
        return SkipReason(str(exc))
    cursor = json.dumps({"v": CURSOR_VERSION, "shards_with_news": [shard for shard, _ in with_news]})
    if not with_news:
        return SensorResult(skip_reason=SkipReason("no shard has records past its checkpoint"), cursor=cursor)
    requests = []
    for group in sorted({g for _, g in with_news}):
        shards = [shard for shard, g in with_news if g == group]
        config = {"shard_group": group, "shard_groups": groups}
        op_config = {"ops": {RAW_USAGE_EVENTS.to_python_identifier(): {"config": config}}}
        requests.append(
            RunRequest(
                tags={LANDING_TAG: kinesis_landing_tag(group, groups), "cdr/shards": ",".join(shards)},
                run_config=op_config if groups > 1 else {},
            )
        )
    return SensorResult(run_requests=requests, cursor=cursor)
