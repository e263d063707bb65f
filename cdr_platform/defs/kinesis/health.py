"""Health of ``kinesis/usage_stream``: observed shard positions and lag, the relay's lag, its check.

A sensor observes the stream once a minute without starting a run (a run costs a process start on a
busy machine): per shard, the landed checkpoint, the first record after it and how long it has
waited; and the relay that writes the stream, its checkpoint against the usage events of $all. The
same tick reports the ``relay_lag`` check, which can also be executed on its own from the UI.
"""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetObservation,
    DefaultSensorStatus,
    MetadataValue,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset_check,
    sensor,
)

from cdr_platform.defs.kinesis.assets import KINESIS_USAGE_STREAM
from cdr_platform.defs.landing import PROBE_DEADLINE_S, EndpointHungError, probe_within, read_landed
from cdr_platform.defs.resources import EventStoreResource, KinesisResource, LakeResource, RelayResource
from cdr_platform.errors import PlatformError
from cdr_platform.events import USAGE_EVENT_TYPES
from cdr_platform.lake.landing import load_shard_checkpoints
from cdr_platform.sources.kinesis_reader import ShardPosition, list_shards
from cdr_platform.sources.source_health import RelayLag, ShardLag, measure_relay_lag, measure_stream_lag

RELAY_LAG_CHECK = "relay_lag"
RELAY_LAG_DESCRIPTION = (
    "Fails when the relay trails $all: the oldest usage event EventStoreDB holds that the relay has not "
    "yet published to Kinesis (past the relay's checkpoint) was recorded longer ago than "
    "CDR_RELAY_MAX_LAG_SECONDS, or the lag cannot be measured (EventStoreDB unreachable, checkpoint "
    "unreadable). A dead relay fails it as soon as traffic continues without it."
)


def relay_lag_metadata(lag: RelayLag) -> dict[str, Any]:
    """The relay's position and lag, as observation and check metadata."""
    return {
        "relay_checkpoint_position": lag.checkpoint_position if lag.checkpoint_position is not None else -1,
        "relay_checkpoint_found": lag.checkpoint_found,
        "relay_events_published": lag.events_published,
        "all_head_usage_position": lag.head_position if lag.head_position is not None else -1,
        "relay_events_behind": lag.events_behind,
        "relay_events_behind_capped": lag.events_behind_capped,
        "relay_seconds_behind": round(lag.seconds_behind, 1),
    }


def judge_relay_lag(lag: RelayLag, max_lag_seconds: int) -> tuple[bool, str, dict[str, Any]]:
    """Passed, a one-line description, and metadata."""
    behind = f"{lag.events_behind:,}{'+' if lag.events_behind_capped else ''} usage events"
    passed = lag.seconds_behind <= max_lag_seconds
    if lag.events_behind == 0:
        description = f"the relay is caught up with $all (checkpoint {lag.checkpoint_position})"
    else:
        description = (
            f"the relay is {behind} and {lag.seconds_behind:,.0f} s behind $all "
            f"(limit {max_lag_seconds} s; checkpoint {lag.checkpoint_position}"
            f"{'' if lag.checkpoint_found else ', no checkpoint file: never ran here'})"
        )
    return passed, description, {**relay_lag_metadata(lag), "max_lag_seconds": max_lag_seconds}


def measure_relay(eventstore: EventStoreResource, relay: RelayResource) -> RelayLag:
    with eventstore.client() as client:
        return measure_relay_lag(
            client,
            Path(relay.checkpoint_path),
            USAGE_EVENT_TYPES,
            datetime.now(UTC),
            timeout_s=PROBE_DEADLINE_S / 2,
        )


@asset_check(asset=KINESIS_USAGE_STREAM, name=RELAY_LAG_CHECK, description=RELAY_LAG_DESCRIPTION)
def relay_lag(
    context: AssetCheckExecutionContext, eventstore: EventStoreResource, relay: RelayResource
) -> AssetCheckResult:
    evaluation, _ = evaluate_relay(eventstore, relay)  # unmeasurable lag fails the check, as on the sensor
    context.log.info(evaluation.description or "")
    return AssetCheckResult(
        passed=evaluation.passed,
        severity=evaluation.severity,
        description=evaluation.description,
        metadata=evaluation.metadata,
    )


def shards_table(shards: list[ShardLag]) -> str:
    lines = [
        "| shard | landed sequence | next record | waiting (s) | ms behind latest | state |",
        "|---|---|---|---|---|---|",
    ]
    for s in shards:
        state = ("closed, " if s.closed else "") + ("caught up" if s.caught_up else "behind")
        lines.append(
            f"| {s.shard_id} | {s.landed_sequence or '-'} | {s.next_sequence or '-'} | "
            f"{s.oldest_unlanded_age_ms / 1000:.1f} | {s.millis_behind_latest} | {state} |"
        )
    return "\n".join(lines)


def shard_metadata(shards: list[ShardLag]) -> dict[str, Any]:
    return {
        "shards": MetadataValue.md(shards_table(shards)),
        "shard_count": len(shards),
        "shards_behind": sum(not s.caught_up for s in shards),
        "max_landing_lag_ms": max((s.oldest_unlanded_age_ms for s in shards), default=0),
        "shard_positions": MetadataValue.json(
            {
                s.shard_id: {
                    "landed_sequence": s.landed_sequence,
                    "next_sequence": s.next_sequence,
                    "oldest_unlanded_age_ms": s.oldest_unlanded_age_ms,
                    "millis_behind_latest": s.millis_behind_latest,
                    "closed": s.closed,
                }
                for s in shards
            }
        ),
    }


def observe_shards(kinesis: KinesisResource, lake: LakeResource) -> dict[str, Any]:
    """Per-shard metadata, or ``{"shards_error": why}`` when the lake or Kinesis cannot say."""
    landed = read_landed(lake, lambda con: load_shard_checkpoints(con, kinesis.usage_stream), {})
    if isinstance(landed, SkipReason):
        return {"shards_error": landed.skip_message or "lake unreadable"}
    positions = {k: ShardPosition(v.sequence_number, v.shard_ended) for k, v in landed.items()}
    client = kinesis.probe_client()

    def measure() -> list[ShardLag]:
        shards = list_shards(client, kinesis.usage_stream)
        return measure_stream_lag(client, kinesis.usage_stream, shards, positions, datetime.now(UTC))

    try:
        return shard_metadata(probe_within(kinesis.endpoint_name, measure))
    except (BotoCoreError, ClientError, PlatformError) as exc:
        return {"shards_error": f"{kinesis.endpoint_name} unreachable: {exc}"}
    except EndpointHungError as exc:
        return {"shards_error": str(exc)}


def _relay_lag_evaluation(passed: bool, description: str, metadata: dict[str, Any]) -> AssetCheckEvaluation:
    return AssetCheckEvaluation(
        asset_key=KINESIS_USAGE_STREAM,
        check_name=RELAY_LAG_CHECK,
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        description=description,
        metadata=metadata,
    )


def evaluate_relay(
    eventstore: EventStoreResource, relay: RelayResource
) -> tuple[AssetCheckEvaluation, dict[str, Any]]:
    """The ``relay_lag`` evaluation and the relay's observation metadata; unmeasurable lag fails."""
    try:
        lag = probe_within(eventstore.endpoint_name, lambda: measure_relay(eventstore, relay))
    except (PlatformError, EndpointHungError) as exc:
        description = f"the relay's lag cannot be measured: {exc}"
        failed = _relay_lag_evaluation(False, description, {"max_lag_seconds": relay.max_lag_seconds})
        return failed, {"relay_error": description}
    return _relay_lag_evaluation(*judge_relay_lag(lag, relay.max_lag_seconds)), relay_lag_metadata(lag)


@sensor(
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Observes kinesis/usage_stream once a minute without a run: each shard's landed checkpoint, "
    "its first unlanded record and how long it has waited, and the relay's checkpoint and lag behind "
    "$all; reports the relay_lag check on the same tick.",
)
def usage_stream_health_sensor(
    context: SensorEvaluationContext,
    kinesis: KinesisResource,
    eventstore: EventStoreResource,
    relay: RelayResource,
    lake: LakeResource,
) -> SensorResult:
    evaluation, relay_metadata = evaluate_relay(eventstore, relay)
    observation = AssetObservation(
        KINESIS_USAGE_STREAM,
        description=evaluation.description,
        metadata={**observe_shards(kinesis, lake), **relay_metadata},
    )
    context.log.info(evaluation.description or "")
    # The skip reason is what the tick history shows: the relay's state, not "empty result".
    return SensorResult(
        asset_events=[observation, evaluation], skip_reason=SkipReason(evaluation.description)
    )
