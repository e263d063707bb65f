"""Benchmark: Dagster run request -> run start, p50 and p95, idle and under ``make dev``'s load.

Starts the embedded devstack and ``dagster dev`` on this repository's workspace and ``dagster.yaml``
(webserver, daemon, code server, the sensors on), all on free ports and a temporary folder. The
latency of a run is what the instance records: its creation (the request, queued) to its
``RUN_START`` event (the run worker has loaded the code and begins the first step); a run that never
starts counts as failed to start. It is split in two: queued (creation to ``RUN_STARTING``: the
daemon's queue poll, and any wait for a pool slot or a run limit, such as a landing run waiting for
a dbt run to release the SQLite catalog's single writer) and launch (``RUN_STARTING`` to
``RUN_START``: the launcher hands the run to a worker, which starts it). Two phases, the same runs in each:

- idle: ``--runs`` runs of the member landing job, one after the other (each when the previous
  one has ended, as the landing sensors request them), once the start-up runs (the automation's
  first builds) have ended and nothing has run for 15 s;
- loaded (the baseline's peer): the same, while the other processes of ``make dev`` run, a live
  simulation (``--members`` at 60x, after a day of history), the relay and the dashboard. The runs
  the sensors and the automation request meanwhile are reported too.

Run: ``.venv/bin/python bench/run_start.py [--runs 10]``; the last line is the headline (target:
p95 <= 10 s under load, no run failing to start).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from cdr_platform.devstack.ports import free_port
from cdr_platform.devtools.dagster_ui import DagsterDev, dagster_env
from cdr_platform.devtools.shutdown import CleanStop, stop_processes
from cdr_platform.devtools.stack import devstack_for
from cdr_platform.settings import load_settings

JOB = "land_member_events"
BENCH_TAG = "cdr/bench"
TERMINAL = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
RUN_DEADLINE_S = 600.0


@dataclass(frozen=True)
class Sample:
    run_id: str
    job: str
    status: str
    start_s: float | None  # request -> RUN_START; None: never started
    queued_s: float | None  # request -> RUN_STARTING: the queue (limits, pools, the daemon's poll)
    launch_s: float | None  # RUN_STARTING -> RUN_START: the launcher and the run worker


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def sample_of(instance: DagsterInstance, run_id: str) -> Sample:
    record = instance.get_run_record_by_id(run_id)
    assert record is not None, run_id
    created = record.create_timestamp.timestamp()
    start = None if record.start_time is None else record.start_time - created
    starting = instance.all_logs(run_id, of_type=DagsterEventType.RUN_STARTING)
    queued = starting[0].timestamp - created if starting else None
    launch = None if start is None or queued is None else start - queued
    return Sample(run_id, record.dagster_run.job_name, record.dagster_run.status.value, start, queued, launch)


def wait_terminal(instance: DagsterInstance, run_id: str) -> None:
    deadline = time.monotonic() + RUN_DEADLINE_S
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status in TERMINAL:
            return
        time.sleep(0.5)
    raise TimeoutError(f"run {run_id} did not end within {RUN_DEADLINE_S:.0f}s")


def wait_no_run_in_flight(instance: DagsterInstance, job: str) -> None:
    """As the landing sensors do: request a run only when none of that job is queued or running."""
    in_flight = [s for s in DagsterRunStatus if s not in TERMINAL]
    deadline = time.monotonic() + RUN_DEADLINE_S
    while instance.get_run_records(RunsFilter(job_name=job, statuses=in_flight), limit=1):
        if time.monotonic() > deadline:
            raise TimeoutError(f"a run of {job} stayed in flight for {RUN_DEADLINE_S:.0f}s")
        time.sleep(0.5)


def wait_start_up_runs(instance: DagsterInstance, quiet_s: float = 15.0) -> float:
    """Wait until no run of any job has been queued or in progress for ``quiet_s``: idle means nothing
    else runs (at start the automation builds what is missing, holding the SQLite catalog's writer).
    Returns the seconds waited."""
    in_flight = [s for s in DagsterRunStatus if s not in TERMINAL]
    started = time.monotonic()
    quiet_since = started
    while time.monotonic() - quiet_since < quiet_s:
        if time.monotonic() - started > RUN_DEADLINE_S:
            raise TimeoutError(f"runs kept going for {RUN_DEADLINE_S:.0f}s after start-up")
        if instance.get_run_records(RunsFilter(statuses=in_flight), limit=1):
            quiet_since = time.monotonic()
        time.sleep(0.5)
    return time.monotonic() - started


def phase(dev: DagsterDev, instance: DagsterInstance, name: str, runs: int) -> list[Sample]:
    samples = []
    for index in range(runs):
        wait_no_run_in_flight(instance, JOB)
        run_id = dev.launch_run(JOB, tags={BENCH_TAG: name})
        wait_terminal(instance, run_id)
        samples.append(sample_of(instance, run_id))
        print(
            f"  {name} {index + 1}/{runs}: {_seconds(samples[-1].start_s)} ({samples[-1].status})", flush=True
        )
    return samples


def _seconds(value: float | None) -> str:
    return "never started" if value is None else f"{value:.1f}s"


def _spread(values: list[float]) -> str:
    if not values:
        return f"{'-':>8} {'-':>8}"
    return f"{percentile(values, 50):>7.1f}s {percentile(values, 95):>7.1f}s"


def row(label: str, samples: list[Sample]) -> tuple[str, float | None]:
    """Request -> start p50/p95/max, its two parts (queued, launch), runs that never started."""
    started = [s.start_s for s in samples if s.start_s is not None]
    queued = [s.queued_s for s in samples if s.queued_s is not None]
    launch = [s.launch_s for s in samples if s.launch_s is not None]
    failed = len(samples) - len(started)
    top = f"{max(started):>7.1f}s" if started else f"{'-':>8}"
    print(
        f"{label:<34} {len(samples):>5} {_spread(started)} {top} {_spread(queued)} {_spread(launch)} "
        f"{failed:>8}"
    )
    return label, percentile(started, 95) if started else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per phase (default: 10)")
    parser.add_argument("--members", type=int, default=500, help="live simulation size (default: 500)")
    args = parser.parse_args()

    with CleanStop("bench/run_start.py"), tempfile.TemporaryDirectory(prefix="run-start-") as folder:
        data = Path(folder)
        cdr = {
            "CDR_DATA_DIR": str(data),
            "CDR_KINESIS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
            "CDR_EVENTSTORE_URI": f"esdb://127.0.0.1:{free_port()}?Tls=false",
        }
        settings = load_settings(environ=cdr)
        traffic: list[subprocess.Popen[bytes]] = []
        with devstack_for(settings, persistent=False):
            env = dagster_env(cdr)
            started = time.monotonic()
            with DagsterDev(settings.dagster_home, env) as dev:
                dev.start()
                print(f"dagster dev up in {time.monotonic() - started:.0f}s ({dev.url}, log {dev.log})")
                instance = DagsterInstance.from_config(str(settings.dagster_home))
                try:
                    settled = wait_start_up_runs(instance)
                    print(f"start-up runs (the automation's first builds) ended after {settled:.0f}s")
                    idle = phase(dev, instance, "idle", args.runs)
                    traffic = start_traffic(env, data, args.members)
                    window_start = time.time()
                    loaded = phase(dev, instance, "loaded", args.runs)
                    others = [
                        sample_of(instance, r.dagster_run.run_id)
                        for r in instance.get_run_records(
                            RunsFilter(
                                created_after=datetime.fromtimestamp(window_start, UTC),
                                statuses=list(TERMINAL),
                            )
                        )
                        if BENCH_TAG not in r.dagster_run.tags
                    ]
                finally:
                    stop_processes(traffic)
                    instance.dispose()
    print()
    print(f"{'':<34} {'':>5} {'request -> start':^26} {'queued':^17} {'launch':^17}")
    print(
        f"{'runs':<34} {'count':>5} {'p50':>8} {'p95':>8} {'max':>8} {'p50':>8} {'p95':>8} {'p50':>8} "
        f"{'p95':>8} {'no start':>8}"
    )
    _, idle_p95 = row(f"{JOB}, idle", idle)
    _, loaded_p95 = row(f"{JOB}, under make dev's load", loaded)
    row("sensor/automation runs, under load", others)
    failed = sum(s.start_s is None for s in idle + loaded + others)
    if idle_p95 is None or loaded_p95 is None:
        print("no run started: see the dagster dev log")
        return 1
    launch_p95 = percentile([s.launch_s for s in loaded if s.launch_s is not None] or [math.nan], 95)
    print(
        f"request -> start p95 {loaded_p95:.1f}s under load (target <= 10 s), {idle_p95:.1f}s idle "
        f"({loaded_p95 / idle_p95:.2f}x); launch alone p95 {launch_p95:.1f}s under load; "
        f"{failed} failed to start"
    )
    return 0


def start_traffic(env: dict[str, str], data: Path, members: int) -> list[subprocess.Popen[bytes]]:
    """What ``make dev`` runs beside Dagster: a live simulation, the relay, the dashboard."""
    cli = [sys.executable, "-m", "cdr_platform.cli"]
    commands = {
        "simulate": [
            *cli, "simulate", "--mode", "live", "--members", str(members), "--speed", "60",
            "--history-days", "1", "--days", "1", "--quiet",
        ],
        "relay": [*cli, "relay", "--quiet"],
        "dashboard": [*cli, "dashboard", "--port", str(free_port())],
    }  # fmt: skip
    processes = []
    for name, command in commands.items():
        with (data / f"{name}.log").open("ab") as log:
            processes.append(
                subprocess.Popen(
                    command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
    return processes


if __name__ == "__main__":
    sys.exit(main())
