"""``make dev``'s supervisor: a child that dies is announced and restarted; a finished one is not."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cdr_platform.devtools.supervise import Child, Supervisor
from cdr_platform.sources.backoff import Backoff

pytestmark = pytest.mark.unit


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _until(condition: Callable[[], bool], what: str, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {deadline_s:.0f}s")
        time.sleep(0.05)


def test_a_dead_child_is_announced_and_restarted_and_stop_ends_it(tmp_path: Path) -> None:
    said: list[str] = []
    supervisor = Supervisor(say=said.append, poll_s=0.05)
    # Dies at once the first two times (a counter in a file), then stays up.
    counter = tmp_path / "starts"
    code = (
        "import pathlib, sys, time\n"
        f"p = pathlib.Path({str(counter)!r}); n = int(p.read_text()) if p.exists() else 0\n"
        "p.write_text(str(n + 1))\n"
        "print('relay: endpoint unreachable', flush=True)\n"
        "sys.exit(3) if n < 2 else time.sleep(600)\n"
    )
    relay = Child("relay", _python(code), tmp_path / "relay.log", backoff=Backoff(base_s=0.01, cap_s=0.02))
    supervisor.add(relay)
    supervisor.start_watching()
    try:
        _until(lambda: counter.exists() and counter.read_text() == "3", "a third start")
        _until(
            lambda: len([line for line in said if "restarted (pid" in line]) == 2, "two restarts announced"
        )
    finally:
        stopped = supervisor.stop()
    exits = [line for line in said if "exited with code 3" in line]
    assert (
        len(exits) == 2
        and "last log line: relay: endpoint unreachable" in exits[0]
        and "restart 1 in" in exits[0]
    )
    assert relay.process is not None and relay.process.poll() is not None
    assert stopped == [relay.process.pid]
    assert counter.read_text() == "3"  # nothing started after stop


def test_a_child_that_finished_its_work_stays_stopped(tmp_path: Path) -> None:
    said: list[str] = []
    supervisor = Supervisor(say=said.append, poll_s=0.05)
    simulation = Child(
        "simulation", _python("print('period ended')"), tmp_path / "simulate.log", done_when_zero=True
    )
    supervisor.add(simulation)
    supervisor.start_watching()
    try:
        _until(lambda: simulation.finished, "the simulation to be seen finished")
    finally:
        supervisor.stop()
    assert said == ["simulation: finished (exit 0): period ended"]
    assert simulation.restarts == 0
