"""A landing run killed mid-flight does not hold the platform (the shipped dagster.yaml, for real).

The Dagster daemon runs the sensors, the run queue and run monitoring on a temporary instance
configured by the repository's own ``dagster.yaml``. A landing run's worker is SIGKILLed after its
step started; run monitoring must mark the run failed and free its ``lake_writer`` slot, and the
next sensor-requested run must land everything, each event once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from cdr_platform.defs.run_launcher import LocalRunLauncher
from cdr_platform.lake.connection import LakeError, connect_lake
from cdr_platform.settings import Settings, load_settings
from cdr_platform.sources.kinesis_client import kinesis_client
from tests.kinesis_helpers import new_stream, put_events, usage_events

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DAEMON = Path(sys.executable).with_name("dagster-daemon")
EVENTS = 20_000
LANDED_WITHIN_S = 300
"""Bound from the kill to every event landed: monitoring poll + slot release + sensor tick + a run."""


def _wait_for(what: str, deadline_s: float, probe):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {deadline_s:.0f}s waiting for {what}")


@pytest.fixture
def instance_env(
    tmp_path: Path, kinesis_endpoint: str, fresh_eventstore_uri: str
) -> Iterator[dict[str, str]]:
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    stream = new_stream(kinesis_client("us-east-1", kinesis_endpoint))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDR_", "DAGSTER_"))}
    env |= {
        "DAGSTER_HOME": str(home),
        "CDR_DATA_DIR": str(tmp_path / "data"),
        "CDR_KINESIS_ENDPOINT_URL": kinesis_endpoint,
        "CDR_EVENTSTORE_URI": fresh_eventstore_uri,
        "CDR_USAGE_STREAM": stream,
        "PYTHONPATH": str(ROOT),
    }
    yield env


def test_a_killed_landing_run_frees_its_slot_and_the_next_run_lands_everything(
    instance_env: dict[str, str], tmp_path: Path
) -> None:
    env = instance_env
    events = usage_events(EVENTS, members=300, prefix=uuid.uuid4().hex[:8])
    put_events(kinesis_client("us-east-1", env["CDR_KINESIS_ENDPOINT_URL"]), env["CDR_USAGE_STREAM"], events)
    # the Kinesis landing alone: no dbt automation or reconciliation in the way
    workspace = ["-m", "tests.defs.crash_location"]
    os.environ["DAGSTER_HOME"], previous = env["DAGSTER_HOME"], os.environ.get("DAGSTER_HOME")
    instance = DagsterInstance.get()
    log = (tmp_path / "daemon.log").open("wb")
    daemon = subprocess.Popen(
        [str(DAEMON), "run", *workspace],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert isinstance(instance.run_launcher, LocalRunLauncher)
        landing = RunsFilter(job_name="land_usage_events")

        def started_step() -> str | None:
            for run in instance.get_runs(landing):
                if instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START):
                    return run.run_id
            return None

        victim = _wait_for("a landing run's step to start", 300, started_step)
        pid = _wait_for(
            "the run worker's pid",
            30,
            lambda: instance.run_launcher.run_worker_pid(instance.get_run_by_id(victim)),
        )
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()

        settings = load_settings(environ={k: v for k, v in env.items() if k.startswith("CDR_")})

        def landed() -> int:
            if not Path(settings.resolved_lake_catalog.removeprefix("sqlite:")).exists():
                return 0
            # The killed worker may have created the catalog file before DuckLake initialised it (a
            # read-only session cannot open it yet) or before its schema committed.
            exists = (
                "SELECT count(*) FROM duckdb_tables() "
                "WHERE schema_name = 'raw' AND table_name = 'usage_events'"
            )
            try:
                if not _query(settings, exists)[0][0]:
                    return 0
            except LakeError:
                return 0
            return _query(settings, "SELECT count(*) FROM raw.usage_events")[0][0]

        _wait_for(f"all {EVENTS} events landed after the kill", LANDED_WITHIN_S, lambda: landed() >= EVENTS)
        print(f"everything landed {time.monotonic() - killed_at:.0f}s after the kill")

        assert instance.get_run_by_id(victim).status == DagsterRunStatus.FAILURE
        _wait_for(
            "a later landing run to succeed",
            60,
            lambda: any(r.status == DagsterRunStatus.SUCCESS for r in instance.get_runs(landing)),
        )
        landed_ids = [str(row[0]) for row in _query(settings, "SELECT event_id FROM raw.usage_events")]
        assert len(landed_ids) == len(set(landed_ids))  # nothing doubled
        assert set(landed_ids) == {str(event.event_id) for event in events}  # nothing lost
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(timeout=10)
        log.close()


def _query(settings: Settings, sql: str) -> list[tuple]:
    con = connect_lake(settings.resolved_lake_catalog, settings.resolved_lake_data_path, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
