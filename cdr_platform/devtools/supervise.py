"""Keep ``make dev``'s background processes running: a child that dies is restarted with backoff.

``Supervisor`` watches its children from a daemon thread. A child that exits is announced on stdout
with its exit code and the last line of its log, then restarted after a capped exponential backoff
with full jitter (``sources.backoff.Backoff``, plus a one-second floor, so a stop signal that killed
it is seen first); a child that stayed up for ``healthy_after_s`` starts the backoff over. A child
that exits 0 when ``done_when_zero`` is set has finished its work (the simulation reached the end of
its period) and stays stopped. ``stop`` ends the watching first, then every child: nothing is
restarted after it returns.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cdr_platform.devtools.shutdown import stop_processes
from cdr_platform.sources.backoff import Backoff

POLL_S = 1.0
RESTART_FLOOR_S = 1.0


@dataclass
class Child:
    """One supervised command, its log file and its current process."""

    name: str
    command: list[str]
    log: Path
    done_when_zero: bool = False
    backoff: Backoff = field(default_factory=lambda: Backoff(base_s=1.0, cap_s=60.0))
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    finished: bool = False

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                self.command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.started_at = time.monotonic()

    def last_log_line(self) -> str:
        try:
            lines = self.log.read_bytes()[-4000:].decode(errors="replace").replace("\r", "\n").splitlines()
        except OSError:
            return ""
        return next((line.strip() for line in reversed(lines) if line.strip()), "")


class Supervisor:
    """Starts children, restarts those that die (announced through ``say``), and stops them all."""

    def __init__(
        self, say: Callable[[str], None] = print, healthy_after_s: float = 60.0, poll_s: float = POLL_S
    ) -> None:
        self.say = say
        self.healthy_after_s = healthy_after_s
        self.poll_s = poll_s
        self.children: list[Child] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="dev supervisor", daemon=True)

    def add(self, child: Child) -> Child:
        """Start ``child`` now; it is watched once ``start_watching`` ran."""
        with self._lock:
            child.start()
            self.children.append(child)
        return child

    def start_watching(self) -> None:
        self._thread.start()

    def processes(self) -> list[subprocess.Popen[bytes]]:
        with self._lock:
            return [child.process for child in self.children if child.process is not None]

    def stop(self) -> list[int]:
        """Stop watching, then SIGTERM (and after a grace, SIGKILL) every child; returns their pids."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        return stop_processes(self.processes())

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll_s):
            for child in list(self.children):
                if child.finished or child.process is None:
                    continue
                code = child.process.poll()
                if code is not None:
                    self._exited(child, code)

    def _exited(self, child: Child, code: int) -> None:
        if code == 0 and child.done_when_zero:
            child.finished = True
            self.say(f"{child.name}: finished (exit 0): {child.last_log_line()}")
            return
        if time.monotonic() - child.started_at >= self.healthy_after_s:
            child.backoff.reset()
        delay = RESTART_FLOOR_S + child.backoff.next_delay()
        child.restarts += 1
        ended = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        self.say(
            f"{child.name}: {ended} (last log line: {child.last_log_line() or 'none'}); "
            f"restart {child.restarts} in {delay:.1f}s (log {child.log})"
        )
        if self._stopping.wait(delay):
            return
        with self._lock:
            child.start()
        assert child.process is not None
        self.say(f"{child.name}: restarted (pid {child.process.pid})")
