"""New-consumer streams: a launchpad job that publishes a filtered slice of history to Kinesis."""

from dagster import Config, OpExecutionContext, job, op
from pydantic import Field

from cdr_platform.defs.resources import EventStoreResource, KinesisResource, LakeResource
from cdr_platform.defs.teams import DATA_PLATFORM, team
from cdr_platform.lake.checkpoints import checkpoint_store
from cdr_platform.sources.history_export import build_filter, export_history, stream_consumer


class StreamRequestConfig(Config):
    target_stream: str = Field(description="Kinesis stream to create (if missing) and fill.")
    shards: int = Field(default=1, ge=1, le=50)
    event_types: list[str] = Field(default_factory=list, description="Empty: every business event type.")
    member_ids: list[str] = Field(default_factory=list, description="Empty: every member.")
    categories: list[str] = Field(default_factory=list, description="Stream categories, e.g. call, member.")
    occurred_from: str | None = Field(default=None, description="ISO 8601 event-time start (inclusive).")
    occurred_to: str | None = Field(default=None, description="ISO 8601 event-time end (exclusive).")


@op(tags={"owner": team(DATA_PLATFORM).email})
def publish_history(
    context: OpExecutionContext,
    config: StreamRequestConfig,
    eventstore: EventStoreResource,
    kinesis: KinesisResource,
    lake: LakeResource,
) -> None:
    """Publish the filtered history, resuming from this stream's checkpoint."""
    with eventstore.client() as client, lake.connect() as con:
        load, save = checkpoint_store(con, stream_consumer(config.target_stream))
        report = export_history(
            client,
            kinesis.get_client(),
            config.target_stream,
            build_filter(
                config.event_types,
                config.member_ids,
                config.categories,
                config.occurred_from,
                config.occurred_to,
            ),
            shards=config.shards,
            load_checkpoint=load,
            save_checkpoint=save,
            log=context.log.info,
        )
    context.log.info(
        f"{report.target_stream}: {report.published} events published from {report.scanned} scanned, "
        f"position {report.position}, {report.events_per_second:,.0f} events/s"
    )


@job(
    tags={"owner": team(DATA_PLATFORM).email},
    description="Build a new Kinesis stream from EventStoreDB history for a new consumer: name a filter "
    "(event types, member ids, categories, event-time window) and a target stream in the launchpad.",
)
def request_stream() -> None:
    publish_history()
