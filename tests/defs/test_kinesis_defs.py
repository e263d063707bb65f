"""The Kinesis sensor and landing asset through Dagster, against kinesis-local."""

from __future__ import annotations

from typing import Any

import pytest
from dagster import DagsterInstance, RunRequest, SensorResult, SkipReason, build_sensor_context, materialize

from cdr_platform.defs.kinesis.assets import raw_usage_events
from cdr_platform.defs.kinesis.sensors import kinesis_usage_sensor
from cdr_platform.defs.resources import KinesisResource, LakeResource
from cdr_platform.devstack.ports import free_port
from cdr_platform.sources.kinesis_client import kinesis_client
from tests.kinesis_helpers import new_stream, put_events, usage_events

pytestmark = pytest.mark.integration


def _sensor(resources: dict[str, Any]) -> SensorResult | SkipReason:
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, resources=resources)
        return kinesis_usage_sensor(context)


def test_sensor_requests_a_run_only_when_a_shard_has_news(kinesis_endpoint: str, lake_paths) -> None:
    client = kinesis_client("us-east-1", kinesis_endpoint)
    stream = new_stream(client)
    resources = {
        "kinesis": KinesisResource(region="us-east-1", endpoint_url=kinesis_endpoint, usage_stream=stream),
        "lake": LakeResource(catalog=lake_paths[0], data_path=lake_paths[1]),
    }
    quiet = _sensor(resources)
    assert isinstance(quiet, SensorResult) and not quiet.run_requests

    put_events(client, stream, usage_events(50, prefix="sensor"))
    busy = _sensor(resources)
    assert isinstance(busy, SensorResult) and len(busy.run_requests or []) == 1
    assert isinstance(busy.run_requests[0], RunRequest)

    result = materialize([raw_usage_events], resources=resources)
    assert result.success
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["landed"].value == 50
    assert set(metadata["shard_lag_ms"].value) == {"shardId-000000000000", "shardId-000000000001"}

    after = _sensor(resources)
    assert isinstance(after, SensorResult) and not after.run_requests


def test_sensor_skips_with_a_clear_reason_when_kinesis_is_down(lake_paths) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    resources = {
        "kinesis": KinesisResource(region="us-east-1", endpoint_url=down, usage_stream="usage"),
        "lake": LakeResource(catalog=lake_paths[0], data_path=lake_paths[1]),
    }
    result = _sensor(resources)
    assert isinstance(result, SkipReason)
    assert "unreachable" in (result.skip_message or "")
