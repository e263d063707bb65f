"""``LocalRunLauncher`` runs each run on a worker that loaded the code before the run was launched.

A tiny code location (written to a temporary project) records, for each run, the PID of the
process that ran it and when that process imported the location. The launcher, on a temporary
instance, must: run the job on the warm worker (imported before the launch), warm the next one,
retire a warm worker when a watched file changed, cancel a run on terminate, and report a worker
that died before its run reached Dagster as failed (run monitoring's input).
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.launcher import LaunchRunContext, WorkerStatus
from dagster._core.test_utils import create_run_for_test, instance_for_test

from cdr_platform.defs.run_launcher import WORKER_PID_TAG, LocalRunLauncher

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LOCATION = """
import json, os, time
from pathlib import Path
from dagster import Definitions, OpExecutionContext, in_process_executor, job, op

IMPORTED_AT = time.time()
OUT = Path(os.environ["WARM_TEST_OUT"])


@op
def record(context: OpExecutionContext) -> None:
    entry = {"pid": os.getpid(), "imported_at": IMPORTED_AT, "run_id": context.run_id}
    (OUT / f"{context.run_id}.json").write_text(json.dumps(entry))
    while (OUT / "hold").exists():  # the terminate case holds the run here
        time.sleep(0.1)


@job(executor_def=in_process_executor)
def record_job():
    record()


defs = Definitions(jobs=[record_job])
"""


def _wait_for(what: str, probe, deadline_s: float = 240.0):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {deadline_s:.0f}s waiting for {what}")


@pytest.fixture
def location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "project"
    (project / "warm_location").mkdir(parents=True)
    (project / "warm_location" / "__init__.py").write_text("")
    (project / "warm_location" / "definitions.py").write_text(textwrap.dedent(LOCATION))
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(project), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("WARM_TEST_OUT", str(out))
    return project


@pytest.fixture
def instance(location: Path) -> Iterator[DagsterInstance]:
    launcher = {
        "module": "cdr_platform.defs.run_launcher",
        "class": "LocalRunLauncher",
        "config": {"preload_module": "warm_location.definitions", "warm_workers": 1},
    }
    with instance_for_test(overrides={"run_launcher": launcher}) as instance:
        yield instance
        instance.run_launcher.dispose()


def _launch(instance: DagsterInstance, location: Path) -> str:
    repository = ReconstructableRepository.for_module(
        "warm_location.definitions", "defs", working_directory=str(location)
    )
    origin = repository.get_reconstructable_job("record_job").get_python_origin()
    run = create_run_for_test(instance, job_name="record_job", job_code_origin=origin)
    instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    return run.run_id


def _finished(instance: DagsterInstance, run_id: str) -> DagsterRunStatus | None:
    run = instance.get_run_by_id(run_id)
    return run.status if run is not None and run.is_finished else None


def _record(out: Path, run_id: str) -> dict:
    return json.loads((out / f"{run_id}.json").read_text())


def test_runs_start_on_warm_workers_and_a_change_retires_them(instance: DagsterInstance, location: Path):
    launcher = instance.run_launcher
    assert isinstance(launcher, LocalRunLauncher)
    out = Path(os.environ["WARM_TEST_OUT"])

    launcher.workers.fill()
    warm = launcher.workers._ready[0].process.pid
    time.sleep(0.05)  # the launch below must come after the worker's start, measurably
    launched_at = time.time()
    first = _launch(instance, location)
    assert _wait_for("the first run to end", lambda: _finished(instance, first)) == DagsterRunStatus.SUCCESS
    record = _record(out, first)
    assert record["pid"] == warm == int(instance.get_run_by_id(first).tags[WORKER_PID_TAG])

    # The next worker was started at the launch and is ready before the next run is.
    _wait_for("the next worker to load", lambda: launcher.workers._ready)
    second = _launch(instance, location)
    assert _wait_for("the second run to end", lambda: _finished(instance, second)) == DagsterRunStatus.SUCCESS
    assert _record(out, second)["pid"] != warm
    assert _record(out, second)["imported_at"] >= launched_at  # warmed after the first launch...

    # ...and a worker that loaded the location before a change to it is not used.
    stale = launcher.workers._ready[0]
    source = location / "warm_location" / "definitions.py"
    source.write_text(source.read_text() + "\n# changed\n")
    os.utime(source, (time.time() + 1, time.time() + 1))
    third = _launch(instance, location)
    assert _wait_for("the third run to end", lambda: _finished(instance, third)) == DagsterRunStatus.SUCCESS
    assert _record(out, third)["pid"] != stale.process.pid
    assert _record(out, third)["imported_at"] > stale.started
    _wait_for("the stale worker to exit", lambda: stale.process.poll() is not None, 60)


def test_terminate_cancels_and_a_dead_worker_is_reported(instance: DagsterInstance, location: Path):
    launcher = instance.run_launcher
    out = Path(os.environ["WARM_TEST_OUT"])
    (out / "hold").write_text("")
    held = _launch(instance, location)
    _wait_for("the held run's step", lambda: (out / f"{held}.json").exists())
    assert launcher.check_run_worker_health(instance.get_run_by_id(held)).status == WorkerStatus.RUNNING
    assert launcher.terminate(held)
    assert _wait_for("the cancelled run", lambda: _finished(instance, held)) == DagsterRunStatus.CANCELED

    killed = _launch(instance, location)
    _wait_for("the second held run's step", lambda: (out / f"{killed}.json").exists())
    os.kill(_record(out, killed)["pid"], signal.SIGKILL)
    health = _wait_for(
        "the dead worker to be seen",
        lambda: (
            (h := launcher.check_run_worker_health(instance.get_run_by_id(killed))).status
            == WorkerStatus.FAILED
            and h
        ),
        30,
    )
    assert "is gone" in health.msg
