"""Source health through Dagster, against the local endpoints: observations of kinesis/usage_stream and
eventstore/all, and the relay_lag check failing on a relay that is behind (or dead) and passing once it
has caught up."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetObservation,
    DagsterInstance,
    Definitions,
    SensorResult,
    build_sensor_context,
    materialize,
)
from esdbclient import EventStoreDBClient

from cdr_platform.defs.eventstore.assets import EVENTSTORE_ALL
from cdr_platform.defs.eventstore.health import eventstore_all_health_sensor
from cdr_platform.defs.kinesis.assets import KINESIS_USAGE_STREAM, raw_usage_events, usage_stream
from cdr_platform.defs.kinesis.health import judge_relay_lag, relay_lag, usage_stream_health_sensor
from cdr_platform.defs.resources import (
    EventStoreResource,
    KinesisResource,
    LakeResource,
    RelayResource,
    build_resources,
)
from cdr_platform.devstack.ports import free_port
from cdr_platform.events import USAGE_EVENT_TYPES
from cdr_platform.settings import SettingsError, load_settings
from cdr_platform.sources.kinesis_client import kinesis_client
from cdr_platform.sources.relay import Relay, RelayConfig
from cdr_platform.sources.source_health import RelayLag, measure_relay_lag
from tests.eventstore_helpers import append_events, member_events
from tests.kinesis_helpers import new_stream, usage_events

MEMBER_TYPES = ["member_activated", "plan_changed", "port_out_requested", "member_deactivated"]
RELAY_LAG = AssetCheckKey(KINESIS_USAGE_STREAM, "relay_lag")


def _resources(kinesis: str, eventstore: str, lake_paths, stream: str, checkpoint: Path) -> dict[str, Any]:
    return {
        "kinesis": KinesisResource(region="us-east-1", endpoint_url=kinesis, usage_stream=stream),
        "eventstore": EventStoreResource(uri=eventstore, member_event_types=MEMBER_TYPES, settle_seconds=0),
        "lake": LakeResource(catalog=lake_paths[0], data_path=lake_paths[1]),
        "relay": RelayResource(checkpoint_path=str(checkpoint), max_lag_seconds=1),
    }


def _tick(sensor: Any, resources: dict[str, Any]) -> SensorResult:
    with DagsterInstance.ephemeral() as instance:
        result = sensor(build_sensor_context(instance=instance, resources=resources))
    assert isinstance(result, SensorResult), result
    return result


def _events(result: SensorResult) -> tuple[AssetObservation, AssetCheckEvaluation]:
    observation = next(e for e in result.asset_events if isinstance(e, AssetObservation))
    evaluation = next(e for e in result.asset_events if isinstance(e, AssetCheckEvaluation))
    return observation, evaluation


def _until(condition: Callable[[], SensorResult | None], deadline_s: float = 30) -> SensorResult:
    """Poll until the tick satisfies the condition: events age in real time, one second is the limit."""
    end = time.monotonic() + deadline_s
    while True:
        result = condition()
        if result is not None:
            return result
        assert time.monotonic() < end, "condition not reached before the deadline"
        time.sleep(0.2)


@pytest.mark.unit
def test_judge_relay_lag_compares_the_oldest_unrelayed_event_with_the_limit() -> None:
    now = datetime(2026, 3, 4, 12, tzinfo=UTC)
    behind = RelayLag(True, 10, 5, 90, 7, False, now - timedelta(seconds=301), now)
    passed, description, metadata = judge_relay_lag(behind, 300)
    assert not passed and "7 usage events and 301 s behind" in description
    assert metadata["relay_events_behind"] == 7 and metadata["relay_seconds_behind"] == 301
    assert judge_relay_lag(behind, 301)[0]
    caught_up = RelayLag(True, 90, 12, 90, 0, False, None, now)
    assert judge_relay_lag(caught_up, 1)[0] and caught_up.seconds_behind == 0


@pytest.mark.unit
def test_the_relay_resource_reads_the_relays_default_checkpoint_and_the_lag_setting(tmp_path: Path) -> None:
    environ = {"CDR_DATA_DIR": str(tmp_path), "CDR_RELAY_MAX_LAG_SECONDS": "45"}
    relay = build_resources(load_settings(environ=environ))["relay"]
    assert relay.checkpoint_path == str(tmp_path / "relay" / "cdr-usage-events.checkpoint.json")
    assert relay.max_lag_seconds == 45
    assert load_settings(environ={}).relay_max_lag_seconds == 300
    with pytest.raises(SettingsError, match="CDR_RELAY_MAX_LAG_SECONDS"):
        load_settings(environ={"CDR_RELAY_MAX_LAG_SECONDS": "0"})


@pytest.mark.integration
def test_relay_lag_fails_while_the_relay_is_behind_or_dead_and_passes_once_caught_up(
    kinesis_endpoint: str, fresh_eventstore_uri: str, lake_paths, tmp_path: Path
) -> None:
    kinesis = kinesis_client("us-east-1", kinesis_endpoint)
    stream = new_stream(kinesis)
    checkpoint = tmp_path / "relay" / f"{stream}.checkpoint.json"
    esdb = EventStoreDBClient(uri=fresh_eventstore_uri)
    append_events(esdb, usage_events(60, prefix="health"))
    resources = _resources(kinesis_endpoint, fresh_eventstore_uri, lake_paths, stream, checkpoint)

    # The relay never ran: all 60 events wait; once the oldest is older than the limit, the check fails.
    def failing() -> SensorResult | None:
        result = _tick(usage_stream_health_sensor, resources)
        return result if not _events(result)[1].passed else None

    observation, evaluation = _events(_until(failing))
    assert evaluation.asset_check_key == RELAY_LAG
    assert observation.metadata["relay_events_behind"].value == 60
    assert observation.metadata["relay_checkpoint_found"].value is False
    assert observation.metadata["relay_seconds_behind"].value >= 1  # rounded to 0.1 s: 1.04 s shows as 1.0

    # The check, executed on its own as a run, agrees.
    checks = Definitions(assets=[usage_stream], asset_checks=[relay_lag], resources=resources)
    run = checks.resolve_implicit_global_asset_job_def().execute_in_process()
    (run_evaluation,) = run.get_asset_check_evaluations()
    assert not run_evaluation.passed and run_evaluation.metadata["relay_events_behind"].value == 60

    # The relay catches up: nothing waits, the check passes, and every shard has a record to land.
    result = Relay(esdb, kinesis, RelayConfig(stream, checkpoint)).run(until_caught_up=True)
    observation, evaluation = _events(_tick(usage_stream_health_sensor, resources))
    assert evaluation.passed and observation.metadata["relay_events_behind"].value == 0
    assert observation.metadata["relay_checkpoint_position"].value == result.commit_position
    positions = observation.metadata["shard_positions"].value
    assert set(positions) == {"shardId-000000000000", "shardId-000000000001"}
    assert all(p["landed_sequence"] is None and p["next_sequence"] for p in positions.values())
    assert observation.metadata["shards_behind"].value == 2

    # Landing catches up with the shards.
    assert materialize([raw_usage_events], resources=resources).success
    observation, _ = _events(_tick(usage_stream_health_sensor, resources))
    landed = observation.metadata["shard_positions"].value
    assert observation.metadata["shards_behind"].value == 0
    assert all(p["landed_sequence"] and p["next_sequence"] is None for p in landed.values())

    # The relay is dead and traffic goes on: the check fails again, naming the events it left behind.
    append_events(esdb, usage_events(5, prefix="after-death"))
    observation, evaluation = _events(_until(failing))
    assert observation.metadata["relay_events_behind"].value == 5
    assert "5 usage events" in (evaluation.description or "")
    esdb.close()


@pytest.mark.integration
def test_relay_lag_run_on_its_own_fails_when_eventstore_is_unreachable(
    kinesis_endpoint: str, lake_paths, tmp_path: Path
) -> None:
    unreachable = f"esdb://127.0.0.1:{free_port()}?Tls=false"  # nothing listens there
    resources = _resources(kinesis_endpoint, unreachable, lake_paths, "no-stream", tmp_path / "c.json")
    checks = Definitions(assets=[usage_stream], asset_checks=[relay_lag], resources=resources)
    run = checks.resolve_implicit_global_asset_job_def().execute_in_process()
    (evaluation,) = run.get_asset_check_evaluations()
    assert not evaluation.passed
    assert "cannot be measured" in (evaluation.description or "")


@pytest.mark.integration
def test_relay_lag_counts_usage_events_only_and_caps_the_count(
    fresh_eventstore_uri: str, tmp_path: Path
) -> None:
    esdb = EventStoreDBClient(uri=fresh_eventstore_uri)
    append_events(esdb, usage_events(12, prefix="cap"))
    append_events(esdb, member_events(3, prefix="cap-member"))
    now = datetime.now(UTC)
    lag = measure_relay_lag(esdb, tmp_path / "none.json", USAGE_EVENT_TYPES, now, count_limit=5)
    assert (lag.events_behind, lag.events_behind_capped, lag.checkpoint_found) == (5, True, False)
    full = measure_relay_lag(esdb, tmp_path / "none.json", USAGE_EVENT_TYPES, now)
    assert (full.events_behind, full.events_behind_capped) == (12, False)
    assert full.oldest_unrelayed_at is not None and full.head_position is not None
    esdb.close()


@pytest.mark.integration
def test_eventstore_all_observation_reports_the_head_and_member_events_waiting(
    fresh_eventstore_uri: str, lake_paths, tmp_path: Path
) -> None:
    esdb = EventStoreDBClient(uri=fresh_eventstore_uri)
    append_events(esdb, member_events(4, prefix="obs"))
    head = esdb.get_commit_position()
    esdb.close()
    resources = {
        "eventstore": EventStoreResource(uri=fresh_eventstore_uri, member_event_types=MEMBER_TYPES),
        "lake": LakeResource(catalog=lake_paths[0], data_path=lake_paths[1]),
        "relay": RelayResource(checkpoint_path=str(tmp_path / "absent.json")),
    }
    (observation,) = _tick(eventstore_all_health_sensor, resources).asset_events
    assert isinstance(observation, AssetObservation) and observation.asset_key == EVENTSTORE_ALL
    metadata = {k: v.value for k, v in observation.metadata.items()}
    assert metadata["all_head_position"] == head and metadata["newest_member_event_position"] == head
    assert metadata["member_events_waiting"] == 4 and metadata["member_events_landed_position"] == -1
    assert metadata["relay_checkpoint_found"] is False
