"""Recovery through Dagster: the reconciliation check repairs gaps; replay and stream jobs run."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    DagsterInstance,
    Definitions,
    SkipReason,
    build_sensor_context,
    materialize,
)
from esdbclient import EventStoreDBClient

from cdr_platform.defs.eventstore.sensors import eventstore_member_sensor
from cdr_platform.defs.kinesis.assets import RAW_USAGE_EVENTS, raw_usage_events
from cdr_platform.defs.recovery.reconciliation import reconcile_job, reconciled_with_eventstore
from cdr_platform.defs.recovery.replay import replay_raw_layer
from cdr_platform.defs.recovery.streams import request_stream
from cdr_platform.defs.resources import EventStoreResource, KinesisResource, LakeResource
from cdr_platform.devstack.ports import free_port
from cdr_platform.events import parse_event
from cdr_platform.events.framing import deaggregate
from cdr_platform.lake.connection import connect_lake
from cdr_platform.sources.kinesis_client import kinesis_client
from cdr_platform.sources.kinesis_reader import list_shards, read_shard_page
from tests.eventstore_helpers import append_events
from tests.kinesis_helpers import new_stream, put_events, usage_events

pytestmark = pytest.mark.integration
MEMBER_TYPES = ["member_activated", "plan_changed", "port_out_requested", "member_deactivated"]


def _resources(kinesis_endpoint: str, eventstore_uri: str, lake_paths, stream: str) -> dict[str, Any]:
    return {
        "kinesis": KinesisResource(region="us-east-1", endpoint_url=kinesis_endpoint, usage_stream=stream),
        "eventstore": EventStoreResource(
            uri=eventstore_uri, member_event_types=MEMBER_TYPES, settle_seconds=0
        ),
        "lake": LakeResource(catalog=lake_paths[0], data_path=lake_paths[1]),
    }


def _count(lake_paths, table: str) -> int:
    con = connect_lake(*lake_paths, read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def test_reconciliation_check_repairs_and_replay_and_stream_jobs_run(
    kinesis_endpoint: str, fresh_eventstore_uri: str, lake_paths
) -> None:
    kinesis = kinesis_client("us-east-1", kinesis_endpoint)
    stream = new_stream(kinesis)
    events = usage_events(200, prefix="defs")
    esdb = EventStoreDBClient(uri=fresh_eventstore_uri)
    append_events(esdb, events)
    esdb.close()
    put_events(kinesis, stream, events[:-5])  # five lost on the way
    resources = _resources(kinesis_endpoint, fresh_eventstore_uri, lake_paths, stream)

    result = materialize([raw_usage_events, reconciled_with_eventstore], resources=resources)
    check = result.get_asset_check_evaluations()[0]
    assert check.asset_check_key == AssetCheckKey(RAW_USAGE_EVENTS, "reconciled_with_eventstore")
    # A repair is an incident: the check warns (not a green pass) and says how many per hour of event time.
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert check.metadata["missing"].value == 5 and check.metadata["repaired"].value == 5
    per_hour = check.metadata["repaired_per_hour"].value
    lost_hours = {e.occurred_at.strftime("%Y-%m-%d %H:00") for e in events[-5:]}
    assert set(per_hour) == lost_hours and sum(per_hour.values()) == 5
    assert _count(lake_paths, "raw.usage_events") == 200
    assert result.success  # a warning does not fail the run

    defs = Definitions(
        assets=[raw_usage_events],
        asset_checks=[reconciled_with_eventstore],
        jobs=[reconcile_job],
        resources=resources,
    )
    again = defs.resolve_job_def(reconcile_job.name).execute_in_process()
    (clean,) = again.get_asset_check_evaluations()
    assert clean.passed and clean.metadata["repaired"].value == 0
    assert clean.metadata["repaired_per_hour"].value == {}

    replay = replay_raw_layer.execute_in_process(
        resources=resources, run_config={"ops": {"replay_events": {"config": {"name": "again"}}}}
    )
    assert replay.success and _count(lake_paths, "raw.usage_events") == 200
    output = next(e for e in replay.events_for_node("replay_events") if e.is_successful_output)
    replayed = output.step_output_data.metadata
    assert (replayed["events_read"].value, replayed["landed"].value) == (200, 0)

    target = f"consumer-{uuid.uuid4().hex[:8]}"
    streamed = request_stream.execute_in_process(
        resources=resources,
        run_config={
            "ops": {"publish_history": {"config": {"target_stream": target, "member_ids": ["M0000003"]}}}
        },
    )
    assert streamed.success
    on_stream = [
        parse_event(user.data)
        for shard in list_shards(kinesis, target)
        for record in read_shard_page(kinesis, target, shard.shard_id, None).records
        for user in deaggregate(record.partition_key, record.data)
    ]
    assert sorted(str(e.event_id) for e in on_stream) == sorted(
        str(e.event_id) for e in events if e.member_id == "M0000003"
    )


def test_eventstore_sensor_skips_clearly_when_eventstore_is_down(lake_paths) -> None:
    resources = {
        "eventstore": EventStoreResource(
            uri=f"esdb://127.0.0.1:{free_port()}?Tls=false&MaxDiscoverAttempts=1&GossipTimeout=1",
            member_event_types=MEMBER_TYPES,
        ),
        "lake": LakeResource(catalog=lake_paths[0], data_path=lake_paths[1]),
    }
    with DagsterInstance.ephemeral() as instance:
        result = eventstore_member_sensor(build_sensor_context(instance=instance, resources=resources))
    assert isinstance(result, SkipReason)
    message = result.skip_message or ""
    assert message.startswith("EventStoreDB at esdb://127.0.0.1:") and "unreachable" in message
