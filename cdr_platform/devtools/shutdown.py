"""A clean stop for commands that start processes: Ctrl-C, SIGTERM or an error ends all of them.

``CleanStop`` is a context manager for the main thread of a command (``cdr-platform demo``, ``dev``,
``devstack up``, a benchmark, a pytest session). While it is active:

- the first SIGINT, SIGTERM or SIGHUP raises ``StopRequested`` (a ``KeyboardInterrupt``) in the main thread,
  so ``with`` and ``finally`` blocks unwind (a ``Devstack`` stops its services);
- at the same moment a helper thread ends every descendant process (``end_descendants``), even when
  the main thread is busy in C code or a library swallowed the signal with a handler of its own
  (Dagster's in-process execution does, when run from the main thread);
- when the block exits, what it stopped is printed on stderr, and with ``exit_on_stop`` the process
  exits at once with 128 + the signal number (130 for SIGINT, 143 for SIGTERM), abandoning worker
  threads instead of waiting for them;
- if the main thread has not unwound ``deadline_s`` after the signal, or a second signal arrives,
  the helper thread kills whatever is left with SIGKILL and exits the process itself;
- an exception that leaves the block ends every descendant too, then propagates.

A normal exit ends nothing: ``cdr-platform devstack up`` leaves its services running on purpose.
The signal reaches the helper thread through ``signal.set_wakeup_fd``, which the interpreter writes
from its C-level handler whichever Python handler is installed.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

from cdr_platform.devstack.kinesis_local import KINESIS_LOCAL_MAIN

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Ctrl-C, a supervisor's or CI's stop, and a closed terminal (which would otherwise orphan the
children that run in sessions of their own)."""
GRACE_S = 4.0
"""Between SIGTERM and SIGKILL. Direct children get SIGTERM first (``dagster dev`` then stops its own
children); the rest of the tree gets it after half of this."""
DEADLINE_S = 8.0
"""After the first signal, the process exits by this time whatever the main thread is doing."""
_POLL_S = 0.05
_SETTLE_S = 2.0
"""After SIGKILL, how long to wait for the kernel to report the processes gone."""


class StopRequested(KeyboardInterrupt):
    """A stop signal arrived: unwind, and exit with ``exit_code`` (128 + the signal number)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


# -- the process table -------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcessEntry:
    """One process, identified by its pid and its start time (so a reused pid is not mistaken for it)."""

    pid: int
    ppid: int
    pgid: int
    started: int
    zombie: bool
    argv: tuple[str, ...]

    @property
    def key(self) -> tuple[int, int]:
        return self.pid, self.started

    @property
    def label(self) -> str:
        return process_label(self.argv)


def process_table() -> dict[int, ProcessEntry]:
    """Every process on the machine: from ``/proc`` on Linux, else from ``ps``."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return _ps_table()
    table: dict[int, ProcessEntry] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # the process exited while the table was read
            continue
        # Fields after the command name, which is in parentheses and may hold spaces: state ppid pgrp
        # ... starttime is field 22 of stat(5), index 19 here.
        fields = stat.rsplit(")", 1)[1].split()
        table[int(entry.name)] = ProcessEntry(
            pid=int(entry.name),
            ppid=int(fields[1]),
            pgid=int(fields[2]),
            started=int(fields[19]),
            zombie=fields[0] in ("Z", "X"),
            argv=tuple(part.decode(errors="replace") for part in argv if part),
        )
    return table


def _ps_table() -> dict[int, ProcessEntry]:
    listing = subprocess.run(
        ["ps", "-A", "-o", "pid=", "-o", "ppid=", "-o", "pgid=", "-o", "stat=", "-o", "args="],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    table = {}
    for line in listing.splitlines():
        pid, ppid, pgid, state, *args = line.split(None, 4)
        table[int(pid)] = ProcessEntry(
            int(pid), int(ppid), int(pgid), 0, state.startswith("Z"), tuple(" ".join(args).split())
        )
    return table


def descendants(root: int, table: dict[int, ProcessEntry] | None = None) -> list[ProcessEntry]:
    """The live children of ``root``, their children, and so on (parents before children)."""
    table = process_table() if table is None else table
    children: dict[int, list[ProcessEntry]] = {}
    for entry in table.values():
        children.setdefault(entry.ppid, []).append(entry)
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop(0)
        for child in children.get(parent, []):
            if child.pid != root and not child.zombie:
                found.append(child)
                frontier.append(child.pid)
    return found


def process_label(argv: tuple[str, ...]) -> str:
    """A short name for a process: ``kinesis-local``, ``cdr-platform relay``, ``dbt build``."""
    if not argv:
        return "?"
    if any(part.endswith(f"{KINESIS_LOCAL_MAIN.parent.name}/{KINESIS_LOCAL_MAIN.name}") for part in argv):
        return "kinesis-local"
    words = list(argv)
    if "-m" in words[:-1]:
        words = words[words.index("-m") + 1 :]
    elif Path(words[0]).name.startswith(("python", "node")) and len(words) > 1:
        words = words[1:] if not words[1].startswith("-") else [Path(words[0]).name, *words[1:]]
    name = {
        "cdr_platform.devstack.eventstore": "EventStoreDB server",
        "cdr_platform.cli": "cdr-platform",
    }.get(words[0], Path(words[0]).name)
    if name == "EventStoreDB server":
        return name
    command = next((word for word in words[1:] if not word.startswith("-")), "")
    return f"{name} {command}" if re.fullmatch(r"[a-z][a-z_-]{1,23}", command) else name


def _ignores_sigterm(entry: ProcessEntry) -> bool:
    return entry.label == "kinesis-local"


def _exits_with_us(entry: ProcessEntry) -> bool:
    """Python's multiprocessing resource tracker ignores SIGINT and SIGTERM on purpose: it cleans up
    after this process and exits when this process does (its pipe closes). It is left to do so."""
    return any("multiprocessing.resource_tracker" in part for part in entry.argv)


def _alive(entry: ProcessEntry, table: dict[int, ProcessEntry]) -> bool:
    now = table.get(entry.pid)
    return now is not None and now.started == entry.started and not now.zombie


def _send(entry: ProcessEntry, signum: int, own_group: int) -> None:
    """Signal the process, and its whole group when it leads one of its own (as the devstack's do)."""
    try:
        if entry.pgid == entry.pid and entry.pgid != own_group:
            os.killpg(entry.pgid, signum)
        else:
            os.kill(entry.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # gone already, or not ours to signal: still alive, it is reported as a survivor


# -- ending the descendants --------------------------------------------------------------------
@dataclass
class StopReport:
    """What ``end_descendants`` ended: each process by label and pid, and which needed SIGKILL."""

    ended: list[ProcessEntry] = field(default_factory=list)
    killed: set[tuple[int, int]] = field(default_factory=set)
    survivors: list[ProcessEntry] = field(default_factory=list)

    def merge(self, other: StopReport) -> None:
        known = {entry.key for entry in self.ended}
        self.ended += [entry for entry in other.ended if entry.key not in known]
        self.killed |= other.killed
        self.survivors = other.survivors

    def describe(self) -> str:
        if not self.ended:
            return "no child process was running"
        parts = []
        for entry in self.ended:
            how = ", SIGKILL" if entry.key in self.killed and not _ignores_sigterm(entry) else ""
            parts.append(f"{entry.label} (pid {entry.pid}{how})")
        text = ", ".join(parts)
        if self.survivors:
            text += "; still running: " + ", ".join(f"{e.label} (pid {e.pid})" for e in self.survivors)
        return text


class _ForceStop(Exception):
    """A second signal arrived while the descendants were being ended."""


def end_descendants(
    grace_s: float = GRACE_S,
    *,
    root: int | None = None,
    known: Iterable[ProcessEntry] = (),
    wait: Callable[[float], None] = time.sleep,
) -> StopReport:
    """End every descendant of ``root`` (this process by default); return when all are gone.

    Direct children get SIGTERM at once (kinesis-local, which ignores it, SIGKILL), every other
    descendant after ``grace_s / 2``, and SIGKILL whatever is alive after ``grace_s``. The tree is
    read again on every poll, so a process started meanwhile is ended too, and a process whose
    parent exited first is still known; so is each of ``known`` (the tree when the stop began).
    Returns within about ``grace_s`` + 2 s.
    """
    root = os.getpid() if root is None else root
    own_group = os.getpgid(0)
    report = StopReport()
    tracked: dict[tuple[int, int], ProcessEntry] = {}
    signalled: set[tuple[int, int]] = set()
    started = time.monotonic()
    while True:
        table = process_table()
        for entry in [*known, *descendants(root, table)]:
            if entry.key not in tracked and not (_exits_with_us(entry) and entry.ppid == os.getpid()):
                tracked[entry.key] = entry
                report.ended.append(entry)
        alive = [entry for entry in tracked.values() if _alive(entry, table)]
        elapsed = time.monotonic() - started
        if not alive or elapsed > grace_s + _SETTLE_S:
            report.survivors = alive
            return report
        for entry in alive:
            if elapsed >= grace_s or _ignores_sigterm(entry):
                if entry.key not in report.killed:
                    _send(entry, signal.SIGKILL, own_group)
                    report.killed.add(entry.key)
            elif entry.key not in signalled and (entry.ppid == root or elapsed >= grace_s / 2):
                _send(entry, signal.SIGTERM, own_group)
                signalled.add(entry.key)
        wait(_POLL_S)


def kill_descendants(known: Iterable[ProcessEntry] = ()) -> StopReport:
    """The forced path: SIGKILL every descendant and each of ``known`` at once; returns once they are gone."""
    return end_descendants(0.0, known=known)


# -- the context manager -----------------------------------------------------------------------
def _signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class CleanStop:
    """Stop everything this process started on a stop signal or an error; see the module docstring."""

    def __init__(
        self,
        name: str,
        *,
        grace_s: float = GRACE_S,
        deadline_s: float = DEADLINE_S,
        exit_on_stop: bool = True,
    ) -> None:
        self.name = name
        self.grace_s = grace_s
        self.deadline_s = deadline_s
        self.exit_on_stop = exit_on_stop
        self.signum: int | None = None
        self.report = StopReport()
        self._signals_seen = 0
        self._signalled_at = 0.0
        self._raised = False
        self._lock = threading.Lock()
        self._force_lock = threading.Lock()
        self._teardown_done = threading.Event()
        self._finished = threading.Event()
        self._previous_handlers: dict[int, object] = {}
        self._previous_wakeup_fd = -1
        self._tree_at_signal: list[ProcessEntry] = []
        self._receiver, self._sender = socket.socketpair()
        self._watchdog = threading.Thread(target=self._watch, name=f"{name}: clean stop", daemon=True)

    # -- entering and leaving --------------------------------------------------------------------
    def __enter__(self) -> CleanStop:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("CleanStop installs signal handlers: enter it in the main thread")
        self._sender.setblocking(False)
        self._previous_wakeup_fd = signal.set_wakeup_fd(self._sender.fileno(), warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) is signal.SIG_IGN:
                continue  # ignored on purpose by whoever started us (nohup, a background job)
            self._previous_handlers[signum] = signal.signal(signum, self._handle)
        self._watchdog.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if isinstance(exc, StopRequested):
                self._begin(exc.signum)
            if self.signum is not None:
                self._teardown_done.wait(timeout=max(0.0, self._deadline() - time.monotonic()))
                self.report.merge(end_descendants(self.grace_s))  # anything started while unwinding
                self._say(f"stopped on {_signal_name(self.signum)}: {self.report.describe()}")
            elif exc_type is not None:
                report = end_descendants(self.grace_s)
                if report.ended:
                    self._say(f"stopping after {exc_type.__name__}: ended {report.describe()}")
        finally:
            self._finished.set()
            self._restore()
        if self.signum is not None and self.exit_on_stop:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os._exit(128 + self.signum)

    def _restore(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        self._watchdog.join(timeout=1.0)
        self._receiver.close()
        self._sender.close()

    # -- the stop itself -------------------------------------------------------------------------
    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """In the main thread: raise the stop once; a second signal kills what is left and exits."""
        if self._finished.is_set():
            return
        if self._raised:
            self._force("second signal")
        self._raised = True
        self._begin(signum)
        raise StopRequested(signum)

    def _begin(self, signum: int) -> None:
        """Record the signal and the process tree at that moment (the handler or the thread, first wins)."""
        with self._lock:
            if self.signum is not None:
                return
            self._tree_at_signal = descendants(os.getpid())
            self.signum = signum
            self._signalled_at = time.monotonic()
        self._say(f"{_signal_name(signum)}: stopping everything this command started")

    def _deadline(self) -> float:
        return self._signalled_at + self.deadline_s

    def _force(self, why: str) -> None:
        with self._force_lock:  # never released: the first caller ends the process
            self.report.merge(kill_descendants(known=self._tree_at_signal))
            self._say(f"{why}: killed what was left; stopped {self.report.describe()}")
            os._exit(128 + (self.signum or signal.SIGTERM))

    def _say(self, message: str) -> None:
        """Straight to fd 2: safe from the helper thread even while the main thread holds sys.stderr."""
        with contextlib.suppress(OSError):  # stderr closed: nothing left to tell
            os.write(2, f"{self.name}: {message}\n".encode())

    # -- the helper thread -----------------------------------------------------------------------
    def _watch(self) -> None:
        """Count stop signals from the wakeup fd; end the descendants; enforce the deadline."""
        try:
            while not self._finished.is_set():
                self._poll(0.1)
                if self.signum is None:
                    continue
                if not self._teardown_done.is_set():
                    ending = end_descendants(self.grace_s, known=self._tree_at_signal, wait=self._poll)
                    self.report.merge(ending)
                    self._teardown_done.set()
                elif time.monotonic() > self._deadline():
                    self._force(f"still running {self.deadline_s:g}s after {_signal_name(self.signum)}")
        except _ForceStop:
            self._force("second signal")

    def _poll(self, seconds: float) -> None:
        """Wait up to ``seconds`` for signals: the first begins the stop, a second forces it."""
        readable, _, _ = select.select([self._receiver], [], [], seconds)
        if not readable:
            return
        try:
            data = self._receiver.recv(256)
        except OSError:
            return
        for signum in data:
            if signum not in STOP_SIGNALS:
                continue
            self._signals_seen += 1
            if self._signals_seen > 1:
                raise _ForceStop
            self._begin(signum)


def stop_processes(processes: Iterable[subprocess.Popen[bytes]], grace_s: float = GRACE_S) -> list[int]:
    """SIGTERM each running process (its whole group if it leads one), SIGKILL it after ``grace_s``.

    Returns the pids it had to stop; every process is reaped when it returns.
    """
    running = [process for process in processes if process.poll() is None]
    for process in running:
        _signal_process(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_process(process.pid, signal.SIGKILL)
            process.wait(timeout=_SETTLE_S)
    return [process.pid for process in running]


def _signal_process(pid: int, signum: int) -> None:
    try:
        if os.getpgid(pid) == pid and pid != os.getpgid(0):
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        return
