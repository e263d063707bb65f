"""``raw/dead_letter``: every record that failed to parse, with its bytes, position and reason.

Landing runs write it in the same transaction as the rows they land. Materialising this asset
re-processes the open dead letters (after a parsing fix), lands what now parses, and reports
what remains by reason.
"""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from cdr_platform.defs.concurrency import LAKE_WRITER_POOL
from cdr_platform.defs.eventstore.assets import EVENTSTORE_ALL
from cdr_platform.defs.kinesis.assets import KINESIS_USAGE_STREAM
from cdr_platform.defs.resources import LakeResource
from cdr_platform.defs.teams import DATA_PLATFORM, team
from cdr_platform.lake.connection import LAKE_ALIAS
from cdr_platform.lake.dead_letter import reprocess_dead_letter

RAW_DEAD_LETTER = AssetKey(["raw", "dead_letter"])
DEAD_LETTER_TABLE = f"{LAKE_ALIAS}.raw.dead_letter"


@asset(
    key=RAW_DEAD_LETTER,
    deps=[KINESIS_USAGE_STREAM, EVENTSTORE_ALL],  # written beside the raw tables, from the same sources
    group_name=DATA_PLATFORM,
    owners=team(DATA_PLATFORM).owners,
    kinds={"duckdb"},
    code_version="1",
    pool=LAKE_WRITER_POOL,
    metadata={"dagster/table_name": DEAD_LETTER_TABLE},
    description="Records that failed to parse or validate: raw bytes, source position and the exact "
    "rejection reason. Materialising re-processes open ones after a fix.",
)
def raw_dead_letter(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    with lake.connect() as con:
        result = reprocess_dead_letter(con)
        by_reason = dict(
            con.execute(
                "SELECT reason, count(*) FROM raw.dead_letter WHERE resolved_at IS NULL GROUP BY 1 ORDER BY 1"
            ).fetchall()
        )
        total = con.execute("SELECT count(*) FROM raw.dead_letter").fetchone()[0]
    context.log.info(f"re-processed {result.examined} open dead letters: {result.resolved} now parse")
    return MaterializeResult(
        metadata={
            "examined": result.examined,
            "resolved": result.resolved,
            "landed": result.landed,
            "open": sum(by_reason.values()),
            "open_by_reason": MetadataValue.json(by_reason),
            "dagster/row_count": total,
            "dagster/table_name": DEAD_LETTER_TABLE,
        }
    )
