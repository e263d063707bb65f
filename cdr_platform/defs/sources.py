"""The event sources as external assets, so lineage starts at Kinesis and EventStoreDB."""

from __future__ import annotations

from dagster import AssetKey, AssetSpec

from cdr_platform.defs.ownership import DATA_PLATFORM, OWNER_DATA_PLATFORM

KINESIS_USAGE_STREAM = AssetKey(["kinesis", "usage_stream"])
EVENTSTORE_ALL = AssetKey(["eventstore", "all"])

source_specs = [
    AssetSpec(
        KINESIS_USAGE_STREAM,
        description="The Kinesis stream that delivers usage events (calls, SMS, data, rating, top-ups), "
        "KPL-aggregated, partition key = member id. Written by the relay.",
        group_name=DATA_PLATFORM,
        owners=[OWNER_DATA_PLATFORM],
        kinds={"kinesis"},
    ),
    AssetSpec(
        EVENTSTORE_ALL,
        description="EventStoreDB's $all: the source of truth for every business event; replays start here.",
        group_name=DATA_PLATFORM,
        owners=[OWNER_DATA_PLATFORM],
        kinds={"eventstoredb"},
    ),
]
