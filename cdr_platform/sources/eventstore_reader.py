"""Read business events from EventStoreDB's $all, from a commit position the caller stores.

A catch-up subscription with a server-side event-type filter and checkpoints is used, rather than
``read_all``: with a sparse filter (four member-lifecycle types among millions of usage events),
checkpoints let the stored position advance past long stretches of filtered-out events, so the
next read does not rescan them. Reading stops when the subscription reports it caught up, or after
a bounded number of events. Subscriptions from a position exclude it, so a stored position means
"landed up to and including".
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from esdbclient import EventStoreDBClient
from esdbclient.events import CaughtUp, Checkpoint, RecordedEvent
from esdbclient.exceptions import DeadlineExceeded, EventStoreDBClientException
from pydantic import SecretStr

from cdr_platform.errors import PlatformError
from cdr_platform.settings import Settings, redacted_uri


class EventStoreReadError(PlatformError):
    """EventStoreDB could not be read; the message names the endpoint and the reason."""


@dataclass(frozen=True)
class StoredEvent:
    event_id: str
    event_type: str
    stream_name: str
    data: bytes
    commit_position: int


@dataclass(frozen=True)
class EventStoreBatch:
    events: list[StoredEvent]
    position: int | None  # last commit position considered (an event or a checkpoint)
    caught_up: bool


def type_filter(event_types: Iterable[str]) -> list[str]:
    """One grouped, escaped pattern: esdbclient joins several as ``^a|b$``, which anchors badly."""
    names = sorted(set(event_types))
    if not names:
        raise ValueError("at least one event type is needed for the $all filter")
    return [f"({'|'.join(re.escape(name) for name in names)})"]


def connect_eventstore_from(settings: Settings) -> EventStoreDBClient:
    """The client for the configured cluster, with its CA certificate when one is configured."""
    certificates = settings.eventstore_root_certificates
    uri = settings.eventstore_uri  # a SecretStr, or a plain str in copies made with model_copy
    plain = uri.get_secret_value() if isinstance(uri, SecretStr) else uri
    return connect_eventstore(plain, certificates.read_text() if certificates else None)


def connect_eventstore(uri: str, root_certificates: str | None = None) -> EventStoreDBClient:
    """An esdbclient connected to ``uri``, or a clear error naming it."""
    try:
        return EventStoreDBClient(uri=uri, root_certificates=root_certificates)
    except EventStoreDBClientException as exc:
        raise EventStoreReadError(f"EventStoreDB at {redacted_uri(uri)} is unreachable: {exc!r}") from exc


def read_filtered_batch(
    client: EventStoreDBClient,
    after_position: int | None,
    event_types: Iterable[str],
    max_events: int = 10_000,
    timeout_s: float = 30.0,
    window_size: int = 500,
) -> EventStoreBatch:
    """Events of the given types after ``after_position`` (None: from the start of $all).

    Stops at the caught-up signal, after ``max_events``, or at ``timeout_s``; what was read until
    then is returned with its position (a deadline never throws a partial batch away).
    """
    events: list[StoredEvent] = []
    position = after_position
    caught_up = False
    deadline = time.monotonic() + timeout_s
    subscription: Any = client.subscribe_to_all(
        commit_position=after_position,
        filter_include=type_filter(event_types),
        include_checkpoints=True,
        include_caught_up=True,
        window_size=window_size,
        timeout=timeout_s,
    )
    try:
        for item in subscription:
            if isinstance(item, CaughtUp):
                caught_up = True
                break
            if isinstance(item, Checkpoint):
                position = max(position or 0, item.commit_position or 0)
            else:
                events.append(
                    StoredEvent(
                        str(item.id), item.type, item.stream_name, item.data, int(item.commit_position)
                    )
                )
                position = int(item.commit_position)
            if len(events) >= max_events or time.monotonic() > deadline:
                break
    except DeadlineExceeded:
        pass  # the call's deadline passed between two items: keep what was read, it is consistent
    except EventStoreDBClientException as exc:
        raise EventStoreReadError(f"reading $all failed after position {position}: {exc!r}") from exc
    finally:
        subscription.stop()
    return EventStoreBatch(events, position, caught_up)


def read_all_after(
    client: EventStoreDBClient, after: int | None, event_types: Iterable[str], limit: int
) -> list[RecordedEvent]:
    """Up to ``limit`` events of these types strictly after commit position ``after`` (None: from the start).

    Reading $all forwards from a position includes the event at it, so one more is asked for and the
    start dropped. Errors come back as ``EventStoreReadError`` naming the position.
    """
    try:
        events = list(
            client.read_all(
                commit_position=after,
                filter_include=type_filter(event_types),
                limit=limit + (1 if after is not None else 0),
            )
        )
    except EventStoreDBClientException as exc:
        raise EventStoreReadError(f"reading $all after position {after} failed: {exc!r}") from exc
    if after is not None and events and events[0].commit_position == after:
        events = events[1:]
    return events[:limit]


def latest_position(
    client: EventStoreDBClient, event_types: Iterable[str], timeout_s: float | None = None
) -> int | None:
    """Commit position of the newest event of these types (None if there is none): the sensor's probe."""
    try:
        position = client.get_commit_position(filter_include=type_filter(event_types), timeout=timeout_s)
    except EventStoreDBClientException as exc:
        raise EventStoreReadError(f"EventStoreDB did not answer: {exc!r}") from exc
    return position or None
