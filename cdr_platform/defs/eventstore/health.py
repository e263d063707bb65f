"""Health of ``eventstore/all``: observed head of $all and how far its consumers trail it.

A sensor observes $all once a minute without starting a run: the newest commit position, the newest
member event against the position ``raw/member_events`` has landed (and how many member events wait),
and the relay's checkpoint (read from its file, never written). The relay's lag in events and
seconds, and the check on it, are on ``kinesis/usage_stream``, the stream the relay writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster import (
    AssetObservation,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from esdbclient.exceptions import EventStoreDBClientException

from cdr_platform.defs.eventstore.assets import EVENTSTORE_ALL, MEMBER_CONSUMER
from cdr_platform.defs.landing import PROBE_DEADLINE_S, EndpointHungError, probe_within, read_landed
from cdr_platform.defs.resources import EventStoreResource, LakeResource, RelayResource
from cdr_platform.errors import PlatformError
from cdr_platform.lake.landing import load_eventstore_checkpoint
from cdr_platform.sources.eventstore_reader import EventStoreReadError, latest_position, read_all_after
from cdr_platform.sources.relay import read_checkpoint

MEMBER_COUNT_LIMIT = 5_000


def observe_all(eventstore: EventStoreResource, landed: int | None) -> dict[str, Any]:
    """The head of $all, the newest member event and the member events past ``landed`` (up to a limit)."""
    timeout = PROBE_DEADLINE_S / 3
    with eventstore.client() as client:
        try:
            head = client.get_commit_position(timeout=timeout)
        except EventStoreDBClientException as exc:
            raise EventStoreReadError(f"EventStoreDB did not answer: {exc!r}") from exc
        newest_member = latest_position(client, eventstore.member_event_types, timeout_s=timeout)
        waiting = []
        if newest_member is not None and (landed is None or newest_member > landed):
            waiting = read_all_after(client, landed, eventstore.member_event_types, MEMBER_COUNT_LIMIT)
    return {
        "all_head_position": head,
        "newest_member_event_position": newest_member if newest_member is not None else -1,
        "member_events_landed_position": landed if landed is not None else -1,
        "member_events_waiting": len(waiting),
        "member_events_waiting_capped": len(waiting) >= MEMBER_COUNT_LIMIT,
    }


def relay_checkpoint_metadata(relay: RelayResource) -> dict[str, Any]:
    path = Path(relay.checkpoint_path)
    try:
        position = read_checkpoint(path).commit_position
    except PlatformError as exc:
        return {"relay_checkpoint_error": str(exc)}
    return {
        "relay_checkpoint_position": position if position is not None else -1,
        "relay_checkpoint_found": path.exists(),
    }


@sensor(
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Observes eventstore/all once a minute without a run: the head of $all, the newest member "
    "event against the landed position of raw/member_events, and the relay's checkpoint.",
)
def eventstore_all_health_sensor(
    context: SensorEvaluationContext, eventstore: EventStoreResource, relay: RelayResource, lake: LakeResource
) -> SensorResult | SkipReason:
    landed = read_landed(lake, lambda con: load_eventstore_checkpoint(con, MEMBER_CONSUMER), None)
    if isinstance(landed, SkipReason):
        return landed
    try:
        metadata = probe_within(eventstore.endpoint_name, lambda: observe_all(eventstore, landed))
    except PlatformError as exc:
        return SkipReason(f"{eventstore.endpoint_name} unreachable: {exc}")
    except EndpointHungError as exc:
        return SkipReason(str(exc))
    metadata.update(relay_checkpoint_metadata(relay))
    waiting = metadata["member_events_waiting"]
    description = f"head {metadata['all_head_position']}; {waiting} member events waiting to land"
    context.log.info(description)
    return SensorResult(
        asset_events=[AssetObservation(EVENTSTORE_ALL, description=description, metadata=metadata)],
        skip_reason=SkipReason(description),  # what the tick history shows, not "empty result"
    )
