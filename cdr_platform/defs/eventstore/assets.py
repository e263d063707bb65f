"""EventStoreDB's ``$all``, ``raw/member_events`` landed from it exactly once, and its landing job."""

from dagster import AssetExecutionContext, AssetKey, AssetSpec, Config, MaterializeResult, asset

from cdr_platform.defs.concurrency import LAKE_WRITER_POOL
from cdr_platform.defs.landing import landing_job
from cdr_platform.defs.resources import EventStoreResource, LakeResource
from cdr_platform.defs.teams import DATA_PLATFORM, team
from cdr_platform.lake.connection import LAKE_ALIAS
from cdr_platform.lake.eventstore_landing import land_eventstore

EVENTSTORE_ALL = AssetKey(["eventstore", "all"])
RAW_MEMBER_EVENTS = AssetKey(["raw", "member_events"])
MEMBER_EVENTS_TABLE = f"{LAKE_ALIAS}.raw.member_events"
MEMBER_CONSUMER = "raw_member_events"

eventstore_all = AssetSpec(
    EVENTSTORE_ALL,
    description="EventStoreDB's $all: the source of truth for every business event; replays start here.",
    group_name=DATA_PLATFORM,
    owners=team(DATA_PLATFORM).owners,
    kinds={"eventstoredb"},
)


class EventStoreLandingConfig(Config):
    batch_size: int = 10_000
    max_batches: int = 100


@asset(
    key=RAW_MEMBER_EVENTS,
    deps=[EVENTSTORE_ALL],
    group_name=DATA_PLATFORM,
    owners=team(DATA_PLATFORM).owners,
    kinds={"duckdb", "eventstoredb"},
    code_version="1",
    pool=LAKE_WRITER_POOL,
    metadata={"dagster/table_name": MEMBER_EVENTS_TABLE},
    description="Member lifecycle events (activation, plan change, port-out request, deactivation) once, "
    "keyed by event_id, read from $all with a server-side type filter. Rows and the commit "
    "position commit in one DuckLake transaction.",
)
def raw_member_events(
    context: AssetExecutionContext,
    config: EventStoreLandingConfig,
    eventstore: EventStoreResource,
    lake: LakeResource,
) -> MaterializeResult:
    with eventstore.client() as client, lake.connect() as con:
        report = land_eventstore(
            con,
            client,
            MEMBER_CONSUMER,
            eventstore.member_event_types,
            batch_size=config.batch_size,
            max_batches=config.max_batches,
            log=context.log.info,
        )
        total = con.execute("SELECT count(*) FROM raw.member_events").fetchone()[0]
    return MaterializeResult(
        metadata={
            "received": report.received,
            "landed": report.landed,
            "duplicates": report.duplicates,
            "dead_lettered": report.dead_lettered,
            "start_position": report.start_position or 0,
            "position": report.position or 0,
            "caught_up": report.caught_up,
            "rows_total": total,
            "dagster/row_count": total,
            "dagster/table_name": MEMBER_EVENTS_TABLE,
        }
    )


land_member_events_job = landing_job(
    "land_member_events",
    RAW_MEMBER_EVENTS,
    "eventstore",
    "Land new member lifecycle events from EventStoreDB into raw/member_events.",
)
