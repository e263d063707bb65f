"""The relay under outages: each endpoint is stopped and restarted under a running relay, and every
usage event still reaches Kinesis (duplicates allowed, none missing) while the relay never exits.

Both endpoints are this test's own processes on fixed ports, durable across restarts: kinesis-local
persisting to a folder, the EventStoreDB-compatible server to a SQLite file.

kinesis-local writes its whole state to its persist file once a second (PERSIST_INTERVAL 1s in
``start_kinesis_local``), in place: a record it acknowledged less than a second before a SIGKILL is
lost by the emulator itself, and a kill during a write can leave a torn file. So before killing it,
the test waits until the relay's checkpoint covers every event appended so far (Kinesis acknowledged
them) and the emulator has then completed two writes (the second began after the acknowledgement),
and kills right after a write, far from the next one. The relay's part of the outage - events read
while Kinesis is down, puts failing, retries from the checkpoint - happens after the kill, with
events appended during the outage, so any loss there would be the relay's and would fail the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from esdbclient import EventStoreDBClient, NewEvent, StreamState

from cdr_platform.devstack.kinesis_local import (
    kill_process,
    local_kinesis_client,
    start_kinesis_local,
    wait_until_serving,
)
from cdr_platform.devstack.ports import free_port, wait_for_port
from cdr_platform.events import Event, encode_event
from cdr_platform.sources.relay import Relay, RelayConfig, RelayResult, read_checkpoint
from tests.eventstore_helpers import member_events
from tests.kinesis_helpers import new_stream, usage_events
from tests.simulator.kinesis_readback import read_user_records

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PERSIST_FILE = "kinesis-data.json"  # kinesis-mock's default PERSIST_FILE_NAME
QUIET_AFTER_WRITE_S = 0.15  # the persist file unchanged this long, and whole JSON: a write has finished


def wait_until(condition: Callable[[], bool], deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {deadline_s}s waiting for {what}")
        time.sleep(0.02)


class KinesisLocal:
    """kinesis-local on a fixed port, persisting to a folder, killed and restarted by the test."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = start_kinesis_local(self.port, self.folder / "kinesis.log", self.folder / "persist")
        wait_until_serving(self.endpoint, self.process, deadline_s=60)

    def kill(self) -> None:
        if self.process is not None:
            kill_process(self.process.pid)
            self.process.wait(timeout=10)
            self.process = None

    def wait_for_two_writes(self, deadline_s: float = 15.0) -> None:
        """Return right after the emulator finished its second write of the persist file from now on."""
        path = self.folder / "persist" / PERSIST_FILE

        def stamp() -> tuple[int, int]:
            stat = path.stat() if path.exists() else None
            return (stat.st_mtime_ns, stat.st_size) if stat else (0, 0)

        deadline = time.monotonic() + deadline_s
        seen, changed_at, finished = stamp(), None, 0
        while finished < 2:
            if time.monotonic() > deadline:
                raise AssertionError(f"kinesis-local did not write {path} twice in {deadline_s}s")
            time.sleep(0.02)
            now = stamp()
            if now != seen:
                seen, changed_at = now, time.monotonic()
                continue
            quiet = changed_at is not None and time.monotonic() - changed_at >= QUIET_AFTER_WRITE_S
            if quiet and _is_whole_json(path):  # not whole: the write stalled midway, keep watching
                finished, changed_at = finished + 1, None


def _is_whole_json(path: Path) -> bool:
    try:
        json.loads(path.read_bytes())
    except ValueError:
        return False
    return True


class EventStoreServer:
    """The EventStoreDB-compatible server on a fixed port, durable in SQLite, stopped and restarted."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.uri = f"esdb://127.0.0.1:{self.port}?Tls=false"
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.folder / "eventstore.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cdr_platform.devstack.eventstore", "--port", str(self.port),
                 "--db", str(self.folder / "events.sqlite")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        if not wait_for_port("127.0.0.1", self.port, 60):
            raise AssertionError(f"the EventStoreDB-compatible server did not start; see {self.folder}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)
            self.process = None


class RelayThread:
    """``Relay.run`` until stopped, on a thread; keeps what it returned or raised."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.stop = threading.Event()
        self.result: RelayResult | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="relay-under-test", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self.relay.run(stop=self.stop)
        except BaseException as exc:  # kept for the test to report
            self.error = exc

    def assert_running(self) -> None:
        assert self.error is None, f"the relay exited with {self.error!r}"
        assert self.thread.is_alive(), "the relay returned although it was not stopped"

    def finish(self) -> RelayResult:
        self.stop.set()
        self.thread.join(timeout=30)
        assert self.error is None, f"the relay exited with {self.error!r}"
        assert self.result is not None
        return self.result


def append(uri: str, phase: str, usage: Sequence[Event]) -> int:
    """A few member events (filtered out by the relay), then the usage events, one stream per member;
    returns the commit position of the last one."""
    client = EventStoreDBClient(uri)
    try:
        for event in member_events(3, prefix=f"{phase}-m"):
            client.append_to_stream(
                f"member-{phase}-{event.member_id}",
                current_version=StreamState.NO_STREAM,
                events=[NewEvent(event.event_type, encode_event(event), id=event.event_id)],
            )
        by_member: dict[str, list[Event]] = {}
        for event in usage:
            by_member.setdefault(event.member_id, []).append(event)
        for member, events in by_member.items():
            client.append_to_stream(
                f"usage-{phase}-{member}",
                current_version=StreamState.NO_STREAM,
                events=[NewEvent(e.event_type, encode_event(e), id=e.event_id) for e in events],
            )
        return client.get_commit_position()
    finally:
        client.close()


def checkpoint_reaches(path: Path, position: int) -> Callable[[], bool]:
    def reached() -> bool:
        return (read_checkpoint(path).commit_position or -1) >= position

    return reached


@pytest.fixture
def endpoints(tmp_path: Path) -> Iterator[tuple[KinesisLocal, EventStoreServer]]:
    kinesis, eventstore = KinesisLocal(tmp_path / "kinesis"), EventStoreServer(tmp_path / "eventstore")
    eventstore.folder.mkdir()
    try:
        kinesis.start()
        eventstore.start()
        yield kinesis, eventstore
    finally:
        kinesis.kill()
        eventstore.stop()


@pytest.mark.timeout(180)
def test_every_event_reaches_kinesis_through_outages_of_each_endpoint(
    endpoints: tuple[KinesisLocal, EventStoreServer], tmp_path: Path
) -> None:
    kinesis, eventstore = endpoints
    client = local_kinesis_client(kinesis.endpoint)
    stream = new_stream(client, 2)
    checkpoint = tmp_path / "relay" / "checkpoint.json"
    config = RelayConfig(stream, checkpoint, batch_events=500, retry_base_s=0.05, retry_cap_s=1.0)
    relay = RelayThread(Relay(EventStoreDBClient(eventstore.uri), client, config))
    appended: list[Event] = []

    def phase(name: str, count: int) -> int:
        events = usage_events(count, members=20, prefix=name)
        appended.extend(events)
        return append(eventstore.uri, name, events)

    def retried_since(before: int) -> Callable[[], bool]:
        return lambda: relay.relay.retries > before

    # 1. a running relay, everything acknowledged and flushed by the emulator
    wait_until(checkpoint_reaches(checkpoint, phase("before", 1500)), 60, "the first events relayed")
    kinesis.wait_for_two_writes()

    # 2. Kinesis killed: events appended meanwhile are read, their puts fail, the relay retries
    kinesis.kill()
    retries = relay.relay.retries
    during_kinesis_outage = phase("kinesis-down", 1500)
    wait_until(retried_since(retries + 1), 30, "the relay retrying while Kinesis is down")
    relay.assert_running()
    kinesis.start()
    wait_until(checkpoint_reaches(checkpoint, during_kinesis_outage), 60, "the relay catching up on Kinesis")
    relay.assert_running()

    # 3. EventStoreDB stopped right after an append, while the relay is busy with it
    retries = relay.relay.retries
    busy = phase("eventstore-busy", 1500)
    eventstore.stop()
    wait_until(retried_since(retries), 30, "the relay retrying while EventStoreDB is down")
    relay.assert_running()
    eventstore.start()
    after_restart = phase("eventstore-back", 500)
    assert after_restart > busy
    wait_until(checkpoint_reaches(checkpoint, after_restart), 60, "the relay catching up on EventStoreDB")
    relay.assert_running()

    result = relay.finish()
    assert result.retries >= 2

    on_kinesis = [json.loads(record.data) for _, record in read_user_records(client, stream)]
    published = {doc["event_id"] for doc in on_kinesis}
    missing = {str(e.event_id) for e in appended} - published
    assert not missing, f"{len(missing)} of {len(appended)} usage events never reached Kinesis"
    assert all(doc["event_type"] not in {"member_activated"} for doc in on_kinesis)


@pytest.mark.timeout(120)
def test_the_cli_relay_waits_out_a_missing_eventstore_and_stream(
    kinesis_endpoint: str, tmp_path: Path
) -> None:
    """Started before EventStoreDB is up and before its stream exists, `cdr-platform relay` keeps
    retrying (ServiceUnavailable, then ResourceNotFoundException) and relays everything once they are."""
    eventstore = EventStoreServer(tmp_path)
    stream = f"outage-{os.getpid()}-{eventstore.port}"
    checkpoint = tmp_path / "relay" / "checkpoint.json"
    stderr_path = tmp_path / "relay.stderr"
    command = [
        sys.executable, "-m", "cdr_platform.cli", "relay", "--quiet", "--eventstore-uri", eventstore.uri,
        "--kinesis-endpoint-url", kinesis_endpoint, "--stream", stream, "--checkpoint", str(checkpoint),
        "--retry-base-s", "0.05", "--retry-cap-s", "0.5",
    ]  # fmt: skip
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    try:

        def retry_lines(endpoint: str) -> int:
            return sum(f"relay: {endpoint}" in line for line in stderr_path.read_text().splitlines())

        wait_until(lambda: retry_lines("EventStoreDB") >= 2, 60, "retries while EventStoreDB is down")
        assert process.poll() is None
        eventstore.start()
        events = usage_events(300, members=10, prefix="cli")
        last = append(eventstore.uri, "cli", events)
        wait_until(lambda: "ResourceNotFoundException" in stderr_path.read_text(), 30, "a missing stream")
        assert process.poll() is None
        client = local_kinesis_client(kinesis_endpoint)
        client.create_stream(StreamName=stream, ShardCount=1)
        wait_until(checkpoint_reaches(checkpoint, last), 60, "the CLI relay catching up")
        assert process.poll() is None
        published = {json.loads(r.data)["event_id"] for _, r in read_user_records(client, stream)}
        assert {str(e.event_id) for e in events} <= published
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        eventstore.stop()
