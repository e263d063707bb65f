"""A restarted live simulation continues where it stopped; a real collision names the differing ids.

Against the local EventStoreDB: ``simulate --mode live --resume --history-days 1`` seeds the history,
goes live and is killed; the second run resumes from its state file, appends only what the first
did not, and no stream holds an event twice. A run of another operator on the same streams fails with
a message that names the differing event ids.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from esdbclient import EventStoreDBClient

from cdr_platform.simulator.builders import ProducedEvent
from cdr_platform.simulator.live_state import STATE_FILE, load_live_state
from cdr_platform.simulator.producers import EventStoreProducer, StreamAppend, StreamConflictError
from cdr_platform.sources.relay_heartbeat import PRODUCER_CLOCK_STREAM, clock_tick_time

pytestmark = pytest.mark.integration

SEED = 7301


def _simulate(uri: str, out: Path, *extra: str) -> subprocess.Popen[str]:
    argv = [
        sys.executable, "-m", "cdr_platform.cli", "simulate", "--mode", "live", "--resume",
        "--seed", str(SEED), "--members", "15", "--history-days", "1", "--days", "1", "--out", str(out),
        "--eventstore-uri", uri, "--quiet", *extra,
    ]  # fmt: skip
    env = {key: value for key, value in os.environ.items() if not key.startswith("CDR_")}
    env["CDR_DATA_DIR"] = str(out.parent / "data")
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stored_ids(client: EventStoreDBClient) -> list[str]:
    pattern = [rf"(call|sms|data|balance|member)-S{SEED}-.*"]
    return [str(e.id) for e in client.read_all(filter_include=pattern, filter_by_stream_name=True)]


def test_a_killed_live_run_resumes_without_colliding(fresh_eventstore_uri: str, tmp_path: Path) -> None:
    out = tmp_path / "truth"
    first = _simulate(fresh_eventstore_uri, out, "--speed", "60")
    deadline = time.monotonic() + 240
    while True:  # until the history is in and live traffic has begun
        state = load_live_state(out / STATE_FILE)
        if state is not None and state.clock > state.live_from:
            break
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the first run did not reach live traffic"
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    stopped_at = load_live_state(out / STATE_FILE)
    assert stopped_at is not None
    client = EventStoreDBClient(fresh_eventstore_uri)
    try:
        before = _stored_ids(client)

        second = _simulate(fresh_eventstore_uri, out, "--speed", "100000")
        _, stderr = second.communicate(timeout=240)
        assert second.returncode == 0, stderr
        assert f"resuming at {stopped_at.clock:%Y-%m-%d %H:%M:%S}Z" in stderr

        after = _stored_ids(client)
        ticks = [clock_tick_time(tick.data) for tick in client.get_stream(PRODUCER_CLOCK_STREAM)]
    finally:
        client.close()
    assert after[: len(before)] == before
    assert len(after) > len(before)
    assert not [i for i, n in Counter(after).items() if n > 1]
    resumed = load_live_state(out / STATE_FILE)
    assert resumed is not None and resumed.start == stopped_at.start and resumed.clock > stopped_at.clock
    # The producer's clock ticked after each acknowledged chunk, forward only, last at the last clock saved.
    assert ticks and ticks == sorted(set(ticks)) and ticks[-1] == resumed.clock


def _event(event_id: str, event_type: str) -> ProducedEvent:
    return ProducedEvent(
        event_id=event_id,
        event_type=event_type,
        member_id="M1",
        correlation_id="c1",
        occurred_at=datetime(2025, 3, 3, tzinfo=UTC),
        stream="sms-collide",
        data=b"{}",
    )


def test_a_collision_names_the_differing_event_ids(fresh_eventstore_uri: str) -> None:
    ids = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(5)]
    written = [
        _event(ids[0], "sms_submitted"),
        _event(ids[1], "usage_rated"),
        _event(ids[2], "sms_delivered"),
    ]
    other = [written[0], written[1], _event(ids[3], "sms_failed")]
    producer = EventStoreProducer(EventStoreDBClient(fresh_eventstore_uri), workers=1)
    try:
        producer.submit([StreamAppend("sms-collide", 0, written)]).wait()
        producer.submit([StreamAppend("sms-collide", 0, written)]).wait()  # the same again: acknowledged
        with pytest.raises(StreamConflictError) as raised:
            producer.submit([StreamAppend("sms-collide", 0, other)]).wait()
    finally:
        producer.close()
    message = str(raised.value)
    assert f"position 2: stored sms_delivered {ids[2]}, this run writes sms_failed {ids[3]}" in message
    assert ids[0] not in message and ids[1] not in message  # the positions that agree are not named
