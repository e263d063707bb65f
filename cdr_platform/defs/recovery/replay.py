"""The replay job: rebuild the raw layer, or a position or time range of it, from EventStoreDB."""

from datetime import datetime

from dagster import AssetMaterialization, Config, OpExecutionContext, job, op
from pydantic import Field

from cdr_platform.defs.concurrency import LAKE_WRITER_POOL, LANDING_TAG
from cdr_platform.defs.eventstore.assets import RAW_MEMBER_EVENTS
from cdr_platform.defs.kinesis.assets import RAW_USAGE_EVENTS
from cdr_platform.defs.recovery.dead_letter import RAW_DEAD_LETTER
from cdr_platform.defs.resources import EventStoreResource, LakeResource
from cdr_platform.defs.teams import DATA_PLATFORM, team
from cdr_platform.events.times import parse_aware_time
from cdr_platform.lake.replay import ALL_BUSINESS_TYPES, ReplayRange, replay_from_eventstore


class ReplayConfig(Config):
    name: str = Field(description="Replay name; a replay resumes from its own checkpoint when re-run.")
    from_position: int | None = Field(default=None, description="$all commit position to start after.")
    to_position: int | None = Field(default=None, description="Last $all commit position to include.")
    occurred_from: str | None = Field(default=None, description="ISO 8601 event-time start (inclusive).")
    occurred_to: str | None = Field(default=None, description="ISO 8601 event-time end (exclusive).")
    event_types: list[str] = Field(default=list(ALL_BUSINESS_TYPES))
    page_size: int = 20_000


def _when(value: str | None, name: str) -> datetime | None:
    return parse_aware_time(value, name) if value else None


@op(pool=LAKE_WRITER_POOL, tags={"owner": team(DATA_PLATFORM).email})
def replay_events(
    context: OpExecutionContext, config: ReplayConfig, eventstore: EventStoreResource, lake: LakeResource
):
    """Read the range from $all and land it through the same exactly-once path as the sensors."""
    replay_range = ReplayRange(
        config.from_position,
        config.to_position,
        _when(config.occurred_from, "occurred_from"),
        _when(config.occurred_to, "occurred_to"),
        tuple(config.event_types),
    )
    with eventstore.client() as client, lake.connect() as con:
        report = replay_from_eventstore(
            con, client, config.name, replay_range, page_size=config.page_size, log=context.log.info
        )
    metadata = {
        "events_read": report.read,
        "landed": report.landed,
        "duplicates": report.duplicates,
        "position_reached": report.position or 0,
        "resumed_from": report.resumed_from or 0,
        "events_per_second": round(report.events_per_second, 1),
    }
    context.add_output_metadata(metadata)
    if report.landed:  # downstream automation reacts to materializations: only when rows were added
        for key in (RAW_USAGE_EVENTS, RAW_MEMBER_EVENTS):
            context.log_event(
                AssetMaterialization(key, description=f"replay {config.name}", metadata=metadata)
            )
    if report.dead_letter is not None and report.dead_letter.resolved:
        context.log_event(
            AssetMaterialization(
                RAW_DEAD_LETTER,
                description=f"re-processed by replay {config.name}",
                metadata={"resolved": report.dead_letter.resolved, "open": report.dead_letter.still_rejected},
            )
        )


@job(
    tags={LANDING_TAG: "replay", "owner": team(DATA_PLATFORM).email},
    description="Rebuild raw/usage_events and raw/member_events (all, or a position or event-time range) "
    "from EventStoreDB; idempotent and resumable; ends by re-processing the dead letter.",
)
def replay_raw_layer() -> None:
    replay_events()
