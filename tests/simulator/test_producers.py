"""EventStoreProducer's multiplexed appends against the local EventStoreDB-compatible server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from esdbclient import EventStoreDBClient, NewEvent, StreamState

from cdr_platform.simulator.builders import ProducedEvent
from cdr_platform.simulator.producers import EventStoreProducer, StreamAppend, StreamConflictError

pytestmark = pytest.mark.integration


def _events(stream: str, count: int) -> list[ProducedEvent]:
    return [
        ProducedEvent(
            event_id=str(uuid.uuid4()),
            event_type="topup_completed",
            member_id="M1",
            correlation_id=stream,
            occurred_at=datetime(2025, 3, 3, tzinfo=UTC),
            stream=stream,
            data=b'{"n": %d}' % index,
        )
        for index in range(count)
    ]


def _ids(client: EventStoreDBClient, stream: str) -> list[str]:
    return [str(event.id) for event in client.get_stream(stream)]


def test_one_call_appends_each_stream_at_its_expected_version_and_a_rerun_adds_nothing(
    eventstore_uri: str,
) -> None:
    client = EventStoreDBClient(eventstore_uri)
    prefix = f"prod-{uuid.uuid4().hex[:8]}"
    first = [StreamAppend(f"{prefix}-{i}", 0, _events(f"{prefix}-{i}", 1 + i % 3)) for i in range(40)]
    second = [StreamAppend(a.stream, len(a.events), _events(a.stream, 2)) for a in first]
    producer = EventStoreProducer(client, workers=2, streams_per_call=16)
    try:
        assert producer.submit(first).wait() == sum(len(a.events) for a in first)
        assert producer.submit(second).wait() == 2 * len(second)
        producer.submit(first).wait()  # a rerun: acknowledged as already written
        producer.submit(second).wait()
    finally:
        producer.close()
    for before, after in zip(first, second, strict=True):
        assert _ids(client, before.stream) == [e.event_id for e in [*before.events, *after.events]]


def test_a_conflicting_stream_fails_alone_and_names_itself(eventstore_uri: str) -> None:
    client = EventStoreDBClient(eventstore_uri)
    prefix = f"conflict-{uuid.uuid4().hex[:8]}"
    taken = f"{prefix}-taken"
    client.append_to_stream(
        taken, current_version=StreamState.NO_STREAM, events=[NewEvent(type="other", data=b"{}")]
    )
    appends = [StreamAppend(f"{prefix}-{i}", 0, _events(f"{prefix}-{i}", 2)) for i in range(5)]
    appends.insert(2, StreamAppend(taken, 0, _events(taken, 1)))
    producer = EventStoreProducer(client, workers=1, streams_per_call=64)
    try:
        with pytest.raises(StreamConflictError, match=taken):
            producer.submit(appends).wait()
    finally:
        producer.close()
    for append in appends:
        if append.stream != taken:
            assert _ids(client, append.stream) == [e.event_id for e in append.events]
