"""The Kinesis usage stream, ``raw/usage_events`` landed from it exactly once, and its landing job."""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)

from cdr_platform.defs.concurrency import POOLS
from cdr_platform.defs.landing import landing_job
from cdr_platform.defs.resources import KinesisResource, LakeResource
from cdr_platform.defs.teams import DATA_PLATFORM, team
from cdr_platform.lake.connection import LAKE_ALIAS
from cdr_platform.lake.kinesis_landing import land_kinesis_stream, shard_group
from cdr_platform.sources.kinesis_reader import list_shards

KINESIS_USAGE_STREAM = AssetKey(["kinesis", "usage_stream"])
RAW_USAGE_EVENTS = AssetKey(["raw", "usage_events"])
USAGE_EVENTS_TABLE = f"{LAKE_ALIAS}.raw.usage_events"

usage_stream = AssetSpec(
    KINESIS_USAGE_STREAM,
    description="The Kinesis stream that delivers usage events (calls, SMS, data, rating, top-ups), "
    "KPL-aggregated, partition key = member id, and the relay's heartbeats (plain records, partition key "
    "$relay-heartbeat, on every shard). Written by the relay.",
    group_name=DATA_PLATFORM,
    owners=team(DATA_PLATFORM).owners,
    kinds={"kinesis"},
)


class KinesisLandingConfig(Config):
    records_per_page: int = 5_000
    max_rounds: int = 200
    shard_group: int = 0
    shard_groups: int = 1
    """The run lands the shards of group ``shard_group`` of ``shard_groups`` (placed by
    ``lake.kinesis_landing.shard_group``, listed when the run starts); with 1 group, every shard."""


@asset(
    key=RAW_USAGE_EVENTS,
    deps=[KINESIS_USAGE_STREAM],
    group_name=DATA_PLATFORM,
    owners=team(DATA_PLATFORM).owners,
    kinds={"duckdb", "kinesis"},
    code_version="1",
    pool=POOLS.shard_landing,
    metadata={"dagster/table_name": USAGE_EVENTS_TABLE},
    description="Every usage event (calls, SMS, data sessions, rating, top-ups) once, keyed by event_id, "
    "with the source, position and ingestion time of its first sighting. Rows and per-shard "
    "checkpoints commit in one DuckLake transaction; malformed records go to raw/dead_letter. On a "
    "Postgres catalog, one run per shard group lands at a time, beside the other groups.",
)
def raw_usage_events(
    context: AssetExecutionContext, config: KinesisLandingConfig, kinesis: KinesisResource, lake: LakeResource
) -> MaterializeResult:
    client = kinesis.get_client()
    shard_ids = None
    if config.shard_groups > 1:
        shards = list_shards(client, kinesis.usage_stream)
        shard_ids = [s.shard_id for s in shards if shard_group(s, config.shard_groups) == config.shard_group]
        context.log.info(f"shard group {config.shard_group} of {config.shard_groups}: {shard_ids}")
    with lake.connect() as con:
        report = land_kinesis_stream(
            con,
            client,
            kinesis.usage_stream,
            records_per_page=config.records_per_page,
            max_rounds=config.max_rounds,
            shard_ids=shard_ids,
            log=context.log.info,
        )
        total = con.execute("SELECT count(*) FROM raw.usage_events").fetchone()[0]
    return MaterializeResult(
        metadata={
            "received": report.received,
            "landed": report.landed,
            "duplicates": report.duplicates,
            "dead_lettered": report.dead_lettered,
            "kinesis_records": report.kinesis_records,
            "events_per_second": round(report.events_per_second, 1),
            "rows_total": total,
            "dagster/row_count": total,
            "dagster/table_name": USAGE_EVENTS_TABLE,
            "shard_lag_ms": MetadataValue.json(report.shard_lag_ms),
            "max_shard_lag_ms": max(report.shard_lag_ms.values(), default=0),
            "ended_shards": MetadataValue.json(report.ended_shards),
        }
    )


land_usage_events_job = landing_job(
    "land_usage_events",
    RAW_USAGE_EVENTS,
    "kinesis",
    "Land new usage events from Kinesis into raw/usage_events.",
)
