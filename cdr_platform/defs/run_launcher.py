"""The run launcher for one machine: runs start on a worker that has already loaded the code.

Dagster's default launcher asks the code server to spawn a fresh Python process per run, which
imports the code location before the run starts: about 8 s of CPU here, the whole of a landing
run's start on a 2-core machine. ``LocalRunLauncher`` keeps ``warm_workers`` processes that have
already imported it (``cdr_platform.defs.warm_run_worker``) and hands each launched run to one; a
new one warms up in the background for the next run. A worker serves one run, so no state leaks
between runs, and a worker older than the newest change to the watched files (the code, the dbt
manifest) is discarded, so an edit is in the next run as it would be with a fresh process.

It also knows when a run worker died: the worker's PID is on the run (tag ``cdr/run_worker_pid``
and the "Started process for run" engine event) and the worker is reported FAILED once that process
is gone; run monitoring then marks the run failed and frees its pool slots, and the sensors request
the next run. (The default launcher cannot report dead workers, so their slots stayed held.)
Termination sends the worker SIGINT, which Dagster turns into a cancelled run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from dagster import DagsterEventType, DagsterInstance, DagsterRun, Field, Int, Noneable, StringSource
from dagster import _check as check
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, RunLauncher, WorkerStatus
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClass, ConfigurableClassData, serialize_value

from cdr_platform.processes import pid_alive

WORKER_PID_TAG = "cdr/run_worker_pid"
WORKER_MODULE = "cdr_platform.defs.warm_run_worker"
CODE_LOCATION = "cdr_platform.definitions"


def newest_change(paths: Iterable[Path]) -> float:
    """The newest modification time of the Python files under ``paths`` (or the files themselves)."""
    newest = 0.0
    for path in paths:
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
            continue
        for folder, subfolders, files in os.walk(path):
            subfolders[:] = [s for s in subfolders if s not in {"node_modules", "__pycache__"}]
            for name in files:
                if name.endswith(".py"):
                    newest = max(newest, os.stat(os.path.join(folder, name)).st_mtime)
    return newest


@dataclass
class _Worker:
    process: subprocess.Popen[str]
    started: float  # wall clock, comparable with file modification times


class WarmWorkers:
    """Run worker processes with ``module`` imported, ``size`` of them kept ready.

    Thread-safe: the run queue may launch from several threads. The workers are children of the
    process that launches runs (the daemon); a worker whose stdin closes exits unused.
    """

    def __init__(
        self, module: str, instance_ref: str, size: int, watched: list[Path], python: str = sys.executable
    ) -> None:
        self.module = module
        self.instance_ref = instance_ref
        self.size = size
        self.watched = watched
        self.python = python
        self._ready: list[_Worker] = []
        self._running: list[subprocess.Popen[str]] = []
        self._lock = threading.Lock()

    def _spawn(self) -> _Worker:
        process = subprocess.Popen(
            [self.python, "-m", WORKER_MODULE, self.module], stdin=subprocess.PIPE, text=True
        )
        assert process.stdin is not None
        process.stdin.write(self.instance_ref + "\n")  # the worker opens the instance while it waits
        process.stdin.flush()
        return _Worker(process, time.time())

    def fill(self) -> None:
        """Start workers until ``size`` are warming or ready."""
        with self._lock:
            self._ready = [w for w in self._ready if w.process.poll() is None]
            while len(self._ready) < self.size:
                self._ready.append(self._spawn())

    def take(self) -> subprocess.Popen[str]:
        """A worker for a run now: the oldest up-to-date ready one, else a fresh one."""
        changed = newest_change(self.watched)
        with self._lock:
            self._running = [p for p in self._running if p.poll() is None]  # reaps finished runs
            chosen = None
            for worker in list(self._ready):
                if worker.process.poll() is not None or worker.started < changed:
                    self._ready.remove(worker)
                    self._discard(worker.process)
                elif chosen is None:
                    self._ready.remove(worker)
                    chosen = worker.process
            chosen = chosen or self._spawn().process
            self._running.append(chosen)
        self.fill()
        return chosen

    @staticmethod
    def _discard(process: subprocess.Popen[str]) -> None:
        if process.poll() is None and process.stdin is not None:
            process.stdin.close()  # an empty stdin: the worker exits without running anything

    def close(self) -> None:
        with self._lock:
            for worker in self._ready:
                self._discard(worker.process)
            self._ready = []


class LocalRunLauncher(RunLauncher, ConfigurableClass):
    """Launches each run on a warm local worker process and reports dead workers to run monitoring."""

    def __init__(
        self,
        inst_data: ConfigurableClassData | None = None,
        preload_module: str = CODE_LOCATION,
        warm_workers: int = 1,
        watch: list[str] | None = None,
    ) -> None:
        self._inst_data = inst_data
        root = _project_root(preload_module)
        watched = [root / path for path in (watch or [preload_module.split(".")[0]])]
        self.workers = WarmWorkers(preload_module, "", warm_workers, watched)
        super().__init__()

    def register_instance(self, instance: DagsterInstance) -> None:
        super().register_instance(instance)
        self.workers.instance_ref = serialize_value(instance.get_ref())
        if _launches_queued_runs():
            self.workers.fill()  # warm before the first run, not during it

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "preload_module": Field(StringSource, is_required=False, default_value=CODE_LOCATION),
            "warm_workers": Field(Int, is_required=False, default_value=1),
            "watch": Field(Noneable([str]), is_required=False, default_value=None),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]) -> Self:
        return cls(inst_data=inst_data, **config_value)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        origin = check.not_none(run.job_code_origin, "a run to launch names its code origin")
        python = origin.executable_path or sys.executable
        # Another interpreter than the warm workers': a fresh worker of that one.
        process = self._cold_worker(python) if python != self.workers.python else self.workers.take()
        args = ExecuteRunArgs(job_origin=origin, run_id=run.run_id, instance_ref=self._instance.get_ref())
        try:
            _hand_over(process, serialize_value(args))
        except BrokenPipeError:  # the worker died while waiting (killed, out of memory): a fresh one
            process = self._cold_worker(python)
            _hand_over(process, serialize_value(args))
        self._instance.add_run_tags(run.run_id, {WORKER_PID_TAG: str(process.pid)})

    def _cold_worker(self, python: str) -> subprocess.Popen[str]:
        return WarmWorkers(self.workers.module, self.workers.instance_ref, 0, [], python).take()

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        pid = self.run_worker_pid(run)
        if pid is None or not pid_alive(pid):
            return False
        self._instance.report_run_canceling(run)
        os.kill(pid, signal.SIGINT)  # Dagster's interrupt handling ends the run as cancelled
        return True

    def dispose(self) -> None:
        self.workers.close()

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def run_worker_pid(self, run: DagsterRun) -> int | None:
        """The run worker's PID: from the launch tag, else from the worker's start event."""
        if WORKER_PID_TAG in run.tags:
            return int(run.tags[WORKER_PID_TAG])
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
        if pid_alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"run worker process {pid} is gone (killed or crashed)",
            run_worker_id=str(pid),
        )


def _hand_over(process: subprocess.Popen[str], args: str) -> None:
    """Give the worker its run: one line, then end of input."""
    assert process.stdin is not None
    process.stdin.write(args + "\n")
    process.stdin.close()


def _launches_queued_runs() -> bool:
    """True in the daemon (``dagster-daemon run``, or ``python -m dagster._daemon`` under ``dagster dev``)."""
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    return program.name == "dagster-daemon" or program.parent.name == "_daemon"


def _project_root(module: str) -> Path:
    """The folder that holds the module's top-level package (watched paths are relative to it)."""
    import importlib.util

    spec = importlib.util.find_spec(module.split(".")[0])
    if spec is None or spec.origin is None:
        raise ValueError(f"run_launcher.config.preload_module: no module named {module!r}")
    return Path(spec.origin).resolve().parent.parent
