"""A run launcher for one machine that knows when a run worker died (``dagster.yaml`` names it).

Dagster's default launcher starts run workers as local processes but cannot tell the run monitor
whether one is still alive, so a run whose worker was SIGKILLed stays STARTED forever and keeps
its ``lake_writer`` pool slot: every later landing, replay, reconciliation and dbt run waits. This
launcher reads the worker's PID from the run's "Started process for run" engine event and reports
the worker FAILED once that process is gone; run monitoring then marks the run failed and frees
its pool slots (``free_slots_after_run_end_seconds``), and the sensors request the next run.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import DagsterEventType, DagsterRun
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus


def process_alive(pid: int) -> bool:
    """True while a process with this PID exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


class LocalRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` plus a worker health check, so run monitoring sees dead workers."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def run_worker_pid(self, run: DagsterRun) -> int | None:
        """The PID the run worker reported when it started, if it has started."""
        for entry in self._instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
            event = entry.dagster_event
            data = event.engine_event_data if event else None
            pid = data.metadata.get("pid") if data else None
            if pid is not None:
                return int(str(pid.value))
        return None

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        pid = self.run_worker_pid(run)
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "the run worker has not reported its PID yet")
        if process_alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"run worker process {pid} is gone (killed or crashed)",
            run_worker_id=str(pid),
        )
