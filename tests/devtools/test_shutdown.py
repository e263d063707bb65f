"""The clean stop's guarantees, each on a small script: escalation to SIGKILL, a swallowed signal,
a second signal, an error, and a pytest session holding the devstack's endpoints."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from cdr_platform.devtools.shutdown import end_descendants, process_label
from tests.devtools.stopping import (
    EXIT_BOUND_S,
    Command,
    clean_environment,
    process_tree,
    signal_and_wait,
    wait_until,
)

pytestmark = pytest.mark.integration

IGNORES_SIGTERM = (
    "import signal, threading; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ignoring SIGTERM', flush=True); threading.Event().wait()"
)
PROBE = textwrap.dedent(
    """
    import signal, subprocess, sys, threading
    from cdr_platform.devtools.shutdown import CleanStop

    with CleanStop("probe", grace_s=1.0, deadline_s=float(sys.argv[2])):
        subprocess.Popen(["sleep", "300"])
        subprocess.Popen([sys.executable, "-c", sys.argv[3]], start_new_session=True)
        if sys.argv[1] == "swallow":  # a library's own handler takes the signal (Dagster's does)
            signal.signal(signal.SIGTERM, lambda *_: None)
            threading.Event().wait()
        elif sys.argv[1] == "stuck":  # the stop unwinds into a block that never ends
            try:
                threading.Event().wait()
            finally:
                threading.Event().wait()
        else:
            raise RuntimeError("the command failed")
    """
)


def _probe(tmp_path: Path, mode: str, deadline_s: float) -> Command:
    argv = [sys.executable, "-c", PROBE, mode, str(deadline_s), IGNORES_SIGTERM]
    command = Command.start(argv, clean_environment(), tmp_path / "stderr.log")
    command.wait_for_line("ignoring SIGTERM", deadline_s=30)
    return command


def test_descendants_get_sigterm_then_sigkill_after_the_grace_period() -> None:
    root = subprocess.Popen(
        ["bash", "-c", f'sleep 300 & {sys.executable} -c "{IGNORES_SIGTERM}" & wait'],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert root.stdout is not None and root.stdout.readline() == b"ignoring SIGTERM\n"
        started = time.monotonic()
        report = end_descendants(grace_s=1.0, root=root.pid)
        took = time.monotonic() - started
        assert not [p for p in process_tree(root.pid)[1:] if p.status() != psutil.STATUS_ZOMBIE]
        assert len(report.ended) == 2 and "sleep" in {entry.label for entry in report.ended}
        assert len(report.killed) == 1 and not report.survivors  # only the one that ignores SIGTERM
        assert 1.0 <= took < 3.5
    finally:
        root.kill()
        root.wait()


def test_a_swallowed_signal_still_ends_everything_by_the_deadline(tmp_path: Path) -> None:
    probe = _probe(tmp_path, "swallow", deadline_s=3.0)
    stopped = signal_and_wait(probe, signal.SIGTERM)
    assert stopped.exit_code == 143
    assert 3.0 <= stopped.seconds < 3.0 + 3.0, probe.output()
    assert "still running 3s after SIGTERM: killed what was left" in probe.stderr


def test_a_second_signal_kills_what_is_left_at_once(tmp_path: Path) -> None:
    probe = _probe(tmp_path, "stuck", deadline_s=60.0)
    probe.process.send_signal(signal.SIGTERM)
    wait_until(lambda: "stopping everything" in probe.stderr, 5, "the stop to begin")
    stopped = signal_and_wait(probe, signal.SIGINT)
    assert stopped.exit_code == 143  # the status of the first signal
    assert stopped.seconds < 3.0, probe.output()
    assert "second signal: killed what was left" in probe.stderr


def test_an_error_ends_the_children_and_propagates(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", PROBE, "fail", "60", IGNORES_SIGTERM]
    command = Command.start(argv, clean_environment(), tmp_path / "stderr.log")
    assert command.process.wait(timeout=EXIT_BOUND_S + 20) == 1
    assert "stopping after RuntimeError: ended sleep (pid" in command.stderr
    assert "RuntimeError: the command failed" in command.stderr


def test_labels_name_the_platforms_processes() -> None:
    python = sys.executable
    assert process_label((python, "-m", "cdr_platform.cli", "relay")) == "cdr-platform relay"
    assert process_label((python, "-m", "cdr_platform.devstack.eventstore", "--port", "1")) == (
        "EventStoreDB server"
    )
    assert process_label(("/usr/bin/node", "/x/node_modules/kinesis-local/main.js")) == "kinesis-local"
    assert process_label((python, "/venv/bin/dagster", "dev", "-p", "3000")) == "dagster dev"
    assert process_label((python, "/venv/bin/dbt", "build", "--select", "x")) == "dbt build"


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_a_signalled_pytest_run_stops_its_fixtures_endpoints(tmp_path: Path, signal_name: str) -> None:
    """A CI timeout (SIGTERM) or Ctrl-C during ``make test`` leaves no kinesis-local or event store."""
    argv = [sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider"]
    argv += ["tests/devtools/probe_fixtures.py"]
    pytest_run = Command.start(argv, clean_environment(), tmp_path / "stderr.log")
    pytest_run.wait_for_line("READY", deadline_s=120)
    stopped = signal_and_wait(pytest_run, getattr(signal, signal_name))
    assert any("kinesis-local" in line for line in stopped.commands)
    assert any("cdr_platform.devstack.eventstore" in line for line in stopped.commands)
    assert stopped.exit_code == pytest.ExitCode.INTERRUPTED, pytest_run.output()
