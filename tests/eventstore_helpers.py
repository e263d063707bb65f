"""Test helpers that append events to the EventStoreDB-compatible server as producers do."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from esdbclient import EventStoreDBClient, NewEvent, StreamState

from cdr_platform.events import Event, encode_event, make_event


def append_events(client: EventStoreDBClient, events: Sequence[Event], per_stream: int = 4) -> None:
    """Append events in order, a few per stream (``usage-<correlation_id>``), ids = event ids."""
    streams: dict[str, list[Event]] = {}
    for event in events:
        streams.setdefault(f"usage-{event.correlation_id}-{event.member_id}", []).append(event)
    for stream, stream_events in streams.items():
        for start in range(0, len(stream_events), per_stream):
            chunk = stream_events[start : start + per_stream]
            client.append_to_stream(
                stream,
                current_version=StreamState.NO_STREAM if start == 0 else start - 1,
                events=[NewEvent(e.event_type, encode_event(e), id=e.event_id) for e in chunk],
            )


def member_events(count: int, prefix: str = "m") -> list[Event]:
    """Distinct valid member_activated events, one per member."""
    from tests.events.samples import SAMPLE_PAYLOADS

    return [
        make_event(
            "member_activated",
            business_key=f"{prefix}-{i}",
            occurred_at=datetime(2025, 3, 1, tzinfo=UTC),
            member_id=f"M{i:07d}",
            correlation_id=f"{prefix}-{i}",
            producer="crm",
            payload=SAMPLE_PAYLOADS["member_activated"],
        )
        for i in range(count)
    ]
