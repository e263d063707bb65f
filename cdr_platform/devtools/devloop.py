"""``make dev``: the local stack, live simulated traffic, the relay, and the Dagster UI, together.

Starts (or reuses) the persistent devstack, then two background processes, a live simulation
(one simulated minute per second by default) and the relay, and finally ``dagster dev`` on
``workspace.yaml`` in the foreground with ``DAGSTER_HOME`` under the data dir. The landing sensors
run by default, so new events flow into the raw layer while the UI is open. Ctrl-C stops the
simulation, the relay and Dagster; the devstack keeps its data (``cdr-platform devstack down``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from cdr_platform.devtools.stack import devstack_for
from cdr_platform.settings import PROJECT_ROOT, Settings


def _background(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def run_dev(settings: Settings, *, members: int = 500, speed: float = 60.0, port: int = 3000) -> int:
    """Run the development loop until Ctrl-C; returns Dagster's exit code."""
    endpoints = devstack_for(settings, persistent=True).up()
    print(f"devstack: {endpoints}")
    logs = settings.data_dir / "dev"
    cli = [sys.executable, "-m", "cdr_platform.cli"]
    children = [
        _background(
            [
                *cli,
                "simulate",
                "--mode",
                "live",
                "--days",
                "30",
                "--members",
                str(members),
                "--speed",
                str(speed),
            ],
            logs / "simulate.log",
        ),
        _background([*cli, "relay"], logs / "relay.log"),
    ]
    print(f"live traffic: {members} members at {speed:g}x; relay running (logs in {logs})")
    dagster_home = settings.dagster_home
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    dagster = str(Path(sys.executable).with_name("dagster"))
    print(f"Dagster UI: http://127.0.0.1:{port}  (Ctrl-C stops the traffic and the UI)")
    signal.signal(signal.SIGTERM, _interrupt)  # stop the same way on SIGTERM as on Ctrl-C
    ui = subprocess.Popen(
        [dagster, "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        cwd=PROJECT_ROOT,
    )
    try:
        return ui.wait()
    except KeyboardInterrupt:
        ui.send_signal(signal.SIGINT)  # dagster dev shuts its webserver, daemon and code servers down
        ui.wait(timeout=60)
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
                child.wait(timeout=15)
        print("traffic stopped; the devstack keeps running (cdr-platform devstack down stops it)")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
