"""Ctrl-C and SIGTERM end everything a command started, within 10 seconds, whatever it was doing.

``cdr-platform demo`` is signalled in each of its stages (simulate, relay, landing, dbt build), the
``make dev`` loop with its whole Dagster tree up, and ``devstack up --foreground``; each must exit
with 128 + the signal number, say what it stopped, and leave no process and no listening port
behind. SIGINT goes to the command's process group as a terminal's Ctrl-C does; SIGTERM to its pid
only, as a CI timeout does.
"""

from __future__ import annotations

import signal
import sys
import urllib.request
from pathlib import Path

import pytest

from cdr_platform.devstack.ports import free_port
from tests.devtools.stopping import Command, clean_environment, signal_and_wait, tree_has, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLI = [sys.executable, "-m", "cdr_platform.cli"]
DEMO = [*CLI, "demo", "--days", "2", "--members", "40"]
"""A small demo: each stage still runs for a second or more, and dbt starts within a minute."""

HEADERS = ["== simulate", "== relay", "== sensors", "== reconcile", "== dbt builds", "== report"]
"""The demo's step lines, in order."""
STAGES = {
    "simulate": "== simulate",
    "relay": "== relay",
    "landing": "== sensors",
    "dbt build": "== dbt builds",
}
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}


CASES = [
    ("simulate", "SIGTERM"),
    ("relay", "SIGINT"),
    ("landing", "SIGTERM"),
    ("dbt build", "SIGINT"),
    ("dbt build", "SIGTERM"),
]
"""Every stage once and each signal in three stages (not the full 4 x 2 matrix, ~30 s a case): the signal
path is one handler whatever the stage, the stage decides which children run. dbt, the only stage with
a grandchild that installs its own handlers, gets both."""


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("stage", "signal_name"), CASES)
def test_demo_stops_cleanly_in_every_stage(tmp_path: Path, stage: str, signal_name: str) -> None:
    signum = SIGNALS[signal_name]
    demo = Command.start(DEMO, clean_environment(CDR_DATA_DIR=str(tmp_path)), tmp_path / "stderr.log")
    demo.wait_for_line(STAGES[stage], deadline_s=180)
    if stage == "dbt build":  # signal while dbt itself runs, as a subprocess of the demo
        wait_until(lambda: tree_has(demo.process.pid, "bin/dbt build"), 60, "dbt build to start")

    stopped = signal_and_wait(demo, signum)

    assert stopped.exit_code == 128 + signum, demo.output()
    assert any("kinesis-local" in line for line in stopped.commands), "kinesis-local was not running"
    assert len(stopped.ports) >= 3, f"the devstack's ports were not all open: {stopped.ports}"
    later = tuple(HEADERS[HEADERS.index(STAGES[stage]) + 1 :])
    assert not [line for line in demo.drain() if line.startswith(later)], demo.output()  # stopped there
    assert f"stopped on {signal_name}: " in demo.stderr and "kinesis-local (pid" in demo.stderr, demo.output()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("signal_name", SIGNALS)
def test_dev_loop_stops_everything_it_started(tmp_path: Path, signal_name: str) -> None:
    """SIGINT once the UI answers (a user at the terminal); SIGTERM while Dagster is still starting."""
    signum = SIGNALS[signal_name]
    port = free_port()
    env = clean_environment(
        CDR_DATA_DIR=str(tmp_path),
        CDR_KINESIS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
        CDR_EVENTSTORE_URI=f"esdb://127.0.0.1:{free_port()}?Tls=false",
    )
    dev = Command.start([*CLI, "dev", "--port", str(port), "--members", "20"], env, tmp_path / "stderr.log")
    dev.wait_for_line("Dagster UI:", deadline_s=120)
    if signum == signal.SIGINT:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/server_info"), 240, "the Dagster UI")
    else:
        for part in ("-m dagster_webserver", "-m dagster._daemon", "code-server start"):
            wait_until(lambda part=part: tree_has(dev.process.pid, part), 120, f"{part} to start")
    assert tree_has(dev.process.pid, "cli relay") and tree_has(dev.process.pid, "cli simulate")

    stopped = signal_and_wait(dev, signum)

    assert stopped.exit_code == 128 + signum, dev.output()
    assert port in stopped.ports or signum == signal.SIGTERM, stopped.ports
    assert f"stopped on {signal_name}: " in dev.stderr and "dagster dev (pid" in dev.stderr, dev.output()
    assert not (tmp_path / "devstack" / "state.json").exists()  # the stack it started is down


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signal_name", [*SIGNALS, "SIGHUP"])
def test_foreground_devstack_serves_until_a_signal(tmp_path: Path, signal_name: str) -> None:
    """SIGHUP too: a closed terminal must not orphan the services, which run in sessions of their own."""
    signum = getattr(signal, signal_name)
    env = clean_environment(
        CDR_DATA_DIR=str(tmp_path),
        CDR_KINESIS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
        CDR_EVENTSTORE_URI=f"esdb://127.0.0.1:{free_port()}?Tls=false",
    )
    argv = [*CLI, "devstack", "up", "--foreground", "--ephemeral"]
    stack = Command.start(argv, env, tmp_path / "stderr.log")
    stack.wait_for_line("serving in the foreground", deadline_s=90)

    stopped = signal_and_wait(stack, signum)

    assert stopped.exit_code == 128 + signum, stack.output()
    assert len(stopped.ports) >= 3, stopped.ports
    assert "kinesis-local (pid" in stack.stderr and "EventStoreDB server (pid" in stack.stderr
    assert not (tmp_path / "devstack" / "state.json").exists()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
