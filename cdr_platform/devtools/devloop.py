"""``make dev``: the local stack, live simulated traffic, the relay, and the Dagster UI, together.

Starts (or reuses) the persistent devstack, then supervised background processes, a live
simulation (one simulated minute per second by default) and the relay, and finally ``dagster dev`` on
``workspace.yaml`` in the foreground with ``DAGSTER_HOME`` under the data dir, and the executives'
dashboard (``cdr-platform dashboard``) beside it. The landing sensors run by default, so new events
flow into the raw layer while the UI is open.

The simulation is restartable: its first run seeds a week of history (from 00:00 UTC seven days
before today up to now, appended as fast as a backfill), so week-over-week figures show from the
start, then runs live; it records how far it got (``simulator/live_state.py``), and the next
``make dev`` resumes the same operator from there instead of seeding again. The relay resumes from
its checkpoint. If the simulation, the relay or the dashboard dies, it is restarted with backoff and
the loop says so on its output (``devtools/supervise.py``).

Ctrl-C or SIGTERM (under ``shutdown.CleanStop``, as ``cdr-platform dev`` runs) stops everything this
loop started: Dagster with its webserver, daemon, code server and runs, the traffic, the dashboard,
and the devstack's services if this loop started them (their data stays under the data dir). A
devstack that was already running (``cdr-platform devstack up``) keeps running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from cdr_platform.devtools.shutdown import stop_processes
from cdr_platform.devtools.stack import devstack_for
from cdr_platform.devtools.supervise import Child, Supervisor
from cdr_platform.settings import PROJECT_ROOT, Settings
from cdr_platform.simulator.live_state import STATE_FILE, LiveStateError, load_live_state

DAGSTER_ENV = {"DAGSTER_GRPC_TIMEOUT_SECONDS": "180"}
"""Calls to the code server (launching a run among them) time out after 60 s by default, which a
loaded 2-core machine exceeded: runs then ended "Failed to start"."""
HISTORY_DAYS = 7
"""Seeded before the live traffic, so today can be compared with the same span last week."""
LIVE_DAYS = 30
SEED = 42


def _traffic_line(settings: Settings, members: int, speed: float) -> str:
    """What the simulation will do: seed the history, or resume where the previous run stopped."""
    state_path = settings.data_dir / "simulator" / f"seed-{SEED}" / STATE_FILE
    try:
        state = load_live_state(state_path)
    except LiveStateError as exc:
        return f"live traffic: {exc}"
    if state is None:
        return (
            f"live traffic: {members} members at {speed:g}x, after seeding {HISTORY_DAYS} days of history "
            "(first run only)"
        )
    return (
        f"live traffic: resuming at {state.clock:%Y-%m-%d %H:%M:%S}Z (simulated), {speed:g}x ({state_path})"
    )


def run_dev(
    settings: Settings,
    *,
    members: int = 500,
    speed: float = 60.0,
    port: int = 3000,
    dashboard_port: int = 8050,
) -> int:
    """Run the development loop until Dagster exits or a signal stops it; returns Dagster's exit code.

    Whichever way it ends, the traffic and Dagster are stopped, and so are the devstack's services
    that this call started.
    """
    stack = devstack_for(settings, persistent=True)
    children: list[subprocess.Popen[bytes]] = []
    supervisor = Supervisor(say=lambda line: print(f"[supervisor] {line}", flush=True))
    try:
        endpoints = stack.up()
        print(f"devstack: {endpoints}")
        logs = settings.data_dir / "dev"
        cli = [sys.executable, "-m", "cdr_platform.cli"]
        print(_traffic_line(settings, members, speed))
        simulate = [
            *cli, "simulate", "--mode", "live", "--resume", "--seed", str(SEED), "--members", str(members),
            "--history-days", str(HISTORY_DAYS), "--days", str(LIVE_DAYS), "--speed", str(speed),
        ]  # fmt: skip
        supervisor.add(Child("simulation", simulate, logs / "simulate.log", done_when_zero=True))
        supervisor.add(Child("relay", [*cli, "relay"], logs / "relay.log"))
        print(
            f"simulation, relay and dashboard supervised: restarted with backoff if one dies (logs in {logs})"
        )
        dashboard = [*cli, "dashboard", "--port", str(dashboard_port), "--wait"]
        supervisor.add(Child("dashboard", dashboard, logs / "dashboard.log"))
        supervisor.start_watching()
        print(
            f"executives' dashboard: http://127.0.0.1:{dashboard_port}  (shows figures once the exec "
            f"marts are built; log in {logs / 'dashboard.log'})"
        )
        dagster_home = settings.dagster_home
        dagster_home.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
        env = {**os.environ, **DAGSTER_ENV, "DAGSTER_HOME": str(dagster_home)}
        dagster = str(Path(sys.executable).with_name("dagster"))
        print(f"Dagster UI: http://127.0.0.1:{port}  (Ctrl-C stops the traffic and the UI)", flush=True)
        # In this process group: a terminal's Ctrl-C reaches dagster dev, which stops its own children.
        ui = subprocess.Popen(
            [dagster, "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
            env=env,
            cwd=PROJECT_ROOT,
        )
        children.append(ui)
        return ui.wait()
    finally:
        supervisor.stop()  # first: nothing is restarted while the rest stops
        stop_processes(reversed(children))
        stopped = stack.stop_started()
        if stopped:
            print(f"traffic and Dagster stopped; devstack stopped ({', '.join(stopped)}), its data kept")
        else:
            print("traffic and Dagster stopped; the devstack keeps running (cdr-platform devstack down)")
