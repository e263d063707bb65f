"""Helpers for the clean-stop tests: run a command in its own session, signal it, check what is left.

A command runs as a terminal would run it, leading a process group of its own: SIGINT goes to the
whole group (what Ctrl-C does), SIGTERM to the command's pid only (what a CI timeout or a
supervisor does). The process tree and its listening ports are read with psutil just before the
signal; afterwards every one of those processes must be gone and every port closed, within the
bound, counted from the signal.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from cdr_platform.devstack.ports import is_listening
from cdr_platform.settings import PROJECT_ROOT

EXIT_BOUND_S = 10.0
"""The issue's promise: the command and everything it started are gone this long after the signal."""


def clean_environment(**cdr: str) -> dict[str, str]:
    """This process's environment without any ``CDR_*`` setting, plus ``cdr``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CDR_")}
    return {**env, **cdr}


@dataclass
class Command:
    """A running command whose stdout lines are read as they come."""

    process: subprocess.Popen[str]
    stderr_path: Path
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, argv: list[str], env: dict[str, str], stderr_path: Path) -> Command:
        # The command starts with SIGHUP's default disposition even when the suite runs under nohup
        # (an ignored signal is inherited): the tests send it SIGHUP as a closed terminal would.
        previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
        try:
            with stderr_path.open("w") as stderr:
                process = subprocess.Popen(
                    argv,
                    cwd=PROJECT_ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    text=True,
                    start_new_session=True,
                )
        finally:
            signal.signal(signal.SIGHUP, previous)
        command = cls(process, stderr_path)
        threading.Thread(target=command._read, daemon=True).start()
        return command

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def output(self) -> str:
        return "\n".join(self.seen) + "\n--- stderr ---\n" + self.stderr[-3000:]

    def wait_for_line(self, prefix: str, deadline_s: float) -> None:
        """Return once a stdout line starts with ``prefix``; fail with the output if it never comes."""
        deadline = time.monotonic() + deadline_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"exited with {self.process.wait()} before {prefix!r}:\n{self.output()}")
            self.seen.append(line)
            if line.startswith(prefix):
                return
        raise AssertionError(f"no line {prefix!r} within {deadline_s:g}s:\n{self.output()}")

    def drain(self) -> list[str]:
        """The stdout lines not read yet (call after the process exited)."""
        rest = []
        while (line := self.lines.get(timeout=5)) is not None:
            rest.append(line)
        self.seen += rest
        return rest


def wait_until(condition: Callable[[], bool], deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {deadline_s:g}s")
        time.sleep(0.2)


def process_tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def command_line(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def tree_has(pid: int, text: str) -> bool:
    """True when the command line of some descendant of ``pid`` contains ``text``."""
    return any(text in command_line(process) for process in process_tree(pid)[1:])


def listening_ports(tree: list[psutil.Process]) -> set[int]:
    ports = set()
    for process in tree:
        try:
            connections = process.net_connections(kind="inet")
        except psutil.Error:
            continue
        ports |= {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN}
    return ports


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@dataclass(frozen=True)
class Stopped:
    exit_code: int
    seconds: float
    commands: list[str]
    """The command lines of the tree when it was signalled."""
    ports: set[int]


def signal_and_wait(command: Command, signum: int) -> Stopped:
    """Read the tree and its ports, send ``signum`` as a terminal or a supervisor would, and wait.

    Fails unless the command exits, every process of the tree is gone and every port is closed
    within ``EXIT_BOUND_S`` of the signal.
    """
    tree = process_tree(command.process.pid)
    ports = listening_ports(tree)
    commands = [command_line(process) for process in tree]
    sent = time.monotonic()
    if signum == signal.SIGINT:
        os.killpg(command.process.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
    else:
        command.process.send_signal(signum)
    try:
        exit_code = command.process.wait(timeout=EXIT_BOUND_S)
    except subprocess.TimeoutExpired:
        os.killpg(command.process.pid, signal.SIGKILL)
        for process in tree[1:]:
            if _alive(process):
                process.kill()
        raise AssertionError(
            f"still running {EXIT_BOUND_S:g}s after the signal:\n{command.output()}"
        ) from None
    seconds = time.monotonic() - sent
    left = EXIT_BOUND_S - seconds
    # Python's multiprocessing resource tracker leaves when its parent does, a moment later.
    wait_until(lambda: not any(_alive(p) for p in tree[1:]), left, "the command's processes to be gone")
    still_open = {port for port in ports if is_listening("127.0.0.1", port)}
    assert not still_open, f"ports still listening: {still_open}\n{command.output()}"
    return Stopped(exit_code, seconds, commands, ports)
