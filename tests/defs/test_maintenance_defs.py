"""The lake maintenance job: owned by the data platform team, in the writer pool, with metadata."""

from __future__ import annotations

from datetime import timedelta

import pytest
from dagster import DagsterInstance

from cdr_platform.defs.maintenance.definitions import defs
from cdr_platform.defs.maintenance.jobs import maintain_lake_files, maintain_lake_job
from cdr_platform.defs.resources import LakeResource
from cdr_platform.defs.teams import DATA_PLATFORM, team
from cdr_platform.events import encode_event
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.landing import LandingBatch, SourceRecord, land_batch
from cdr_platform.lake.schema import ensure_schema
from tests.events.samples import build_event

pytestmark = pytest.mark.unit


def test_job_is_scheduled_owned_and_pooled() -> None:
    assert [s.job_name for s in defs.schedules] == [maintain_lake_job.name]
    assert maintain_lake_job.metadata["owners"].value == team(DATA_PLATFORM).owners
    assert maintain_lake_files.pool == "lake_writer"


def test_job_compacts_and_records_files_before_and_after(lake_paths) -> None:
    con = connect_lake(*lake_paths)
    ensure_schema(con)
    for b in range(8):
        events = [build_event("call_ended", f"defs-{b}-{i}") for i in range(30)]
        records = [SourceRecord(encode_event(e), f"{b}/{i}") for i, e in enumerate(events)]
        land_batch(con, LandingBatch("kinesis", records), dedupe_window=timedelta(hours=6))
    con.close()
    instance = DagsterInstance.ephemeral()
    result = maintain_lake_job.execute_in_process(
        resources={"lake": LakeResource(catalog=lake_paths[0], data_path=lake_paths[1])},
        run_config={"ops": {"maintain_lake_files": {"config": {"snapshot_retention_hours": 0}}}},
        instance=instance,
    )
    assert result.success
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = output.event_specific_data.metadata
    assert metadata["snapshots_after"].value < metadata["snapshots_before"].value
    observed = {
        "/".join(e.asset_key.path): e.event_specific_data.asset_observation.metadata
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    }
    assert set(observed) >= {"raw/usage_events", "raw/member_events"}
    # The eight landed files are merged. (The lake's total can grow on a first run: flushing the
    # claim tables' inlined one-row seeds writes a file each, a fixed cost, not growth.)
    usage = observed["raw/usage_events"]
    assert usage["files_after"].value < usage["files_before"].value == 8
    assert metadata["files_before"].value >= 8 and metadata["files_after"].value > 0
    con = connect_lake(*lake_paths, read_only=True)
    assert con.execute("SELECT count(*) FROM raw.usage_events").fetchone()[0] == 8 * 30
    con.close()
