"""``make dev``: the local stack, live simulated traffic, the relay, and the Dagster UI, together.

Starts (or reuses) the persistent devstack, then two background processes, a live simulation
(one simulated minute per second by default) and the relay, and finally ``dagster dev`` on
``workspace.yaml`` in the foreground with ``DAGSTER_HOME`` under the data dir, and the executives'
dashboard (``cdr-platform dashboard``) beside it. The landing sensors run by default, so new events
flow into the raw layer while the UI is open.

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
from cdr_platform.settings import PROJECT_ROOT, Settings


def _background(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


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
    try:
        endpoints = stack.up()
        print(f"devstack: {endpoints}")
        logs = settings.data_dir / "dev"
        cli = [sys.executable, "-m", "cdr_platform.cli"]
        simulate = [*cli, "simulate", "--mode", "live", "--days", "30", "--members", str(members)]
        children.append(_background([*simulate, "--speed", str(speed)], logs / "simulate.log"))
        children.append(_background([*cli, "relay"], logs / "relay.log"))
        print(f"live traffic: {members} members at {speed:g}x; relay running (logs in {logs})")
        dashboard = [*cli, "dashboard", "--port", str(dashboard_port)]
        children.append(_background(dashboard, logs / "dashboard.log"))
        print(
            f"executives' dashboard: http://127.0.0.1:{dashboard_port}  (shows figures once the exec "
            f"marts are built; log in {logs / 'dashboard.log'})"
        )
        dagster_home = settings.dagster_home
        dagster_home.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
        env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
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
        stop_processes(reversed(children))
        stopped = stack.stop_started()
        if stopped:
            print(f"traffic and Dagster stopped; devstack stopped ({', '.join(stopped)}), its data kept")
        else:
            print("traffic and Dagster stopped; the devstack keeps running (cdr-platform devstack down)")
