"""Durability of the SQLite mode: an acknowledged append survives ``kill -9``; a restart resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from esdbclient import EventStoreDBClient, NewEvent, StreamState

from cdr_platform.devstack.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@contextmanager
def _server_process(db: Path, port: int) -> Iterator[str]:
    """Run the server as the devstack does, yielding its URI once it prints its ready line."""
    command = [sys.executable, "-m", "cdr_platform.devstack.eventstore", "--port", str(port), "--db", str(db)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("listening on esdb://"), line
        yield line.removeprefix("listening on ")
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def test_acknowledged_appends_and_subscriptions_survive_kill_9(tmp_path: Path) -> None:
    db, port = tmp_path / "es.sqlite", free_port()
    with _server_process(db, port) as uri, EventStoreDBClient(uri) as client:
        last = client.append_to_stream(
            "orders",
            current_version=StreamState.NO_STREAM,
            events=[NewEvent(type="Placed", data=b"{}") for _ in range(5)],
        )
        client.create_subscription_to_stream("billing", "orders")
        subscription = client.read_subscription_to_stream("billing", "orders")
        for _ in range(3):
            subscription.ack(next(subscription))
        deadline = time.monotonic() + 5
        while client.get_subscription_info("billing", "orders").last_checkpointed_event_position != "2":
            assert time.monotonic() < deadline, "checkpoint never reached revision 2"
            time.sleep(0.05)
        subscription.stop()
    # the context manager SIGKILLed the server: nothing was shut down cleanly
    with _server_process(db, port) as uri, EventStoreDBClient(uri) as client:
        events = client.get_stream("orders")
        assert [e.stream_position for e in events] == [0, 1, 2, 3, 4]
        assert events[-1].commit_position == last
        nxt = client.append_to_stream(
            "orders", current_version=4, events=[NewEvent(type="Placed", data=b"{}")]
        )
        assert nxt > last
        assert client.get_stream("orders")[-1].stream_position == 5
        subscription = client.read_subscription_to_stream("billing", "orders")
        resumed = next(subscription)
        subscription.stop()
        assert resumed.stream_position == 3
