"""Catch-up subscriptions: confirmation, catch-up then live, caught_up, checkpoints, boundaries."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from esdbclient import EventStoreDBClient, NewEvent, StreamState
from esdbclient.events import CaughtUp, Checkpoint, RecordedEvent

pytestmark = pytest.mark.integration


def _events(n: int, event_type: str = "Happened") -> list[NewEvent]:
    return [NewEvent(type=event_type, data=b"{}") for _ in range(n)]


def test_stream_subscription_catches_up_then_goes_live(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream = unique("live")
    client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=_events(3))
    subscription = client.subscribe_to_stream(stream, include_caught_up=True)
    received: list[object] = []
    for item in subscription:
        received.append(item)
        if isinstance(item, CaughtUp):
            client.append_to_stream(stream, current_version=2, events=_events(2))
        if len([r for r in received if type(r) is RecordedEvent]) == 5:
            break
    subscription.stop()
    kinds = ["caught_up" if isinstance(r, CaughtUp) else r.stream_position for r in received]  # type: ignore[attr-defined]
    assert kinds == [0, 1, 2, "caught_up", 3, 4]


def test_stream_subscription_from_a_revision_excludes_it(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream = unique("subrev")
    client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=_events(4))
    with client.subscribe_to_stream(stream, stream_position=1) as subscription:
        positions = [next(subscription).stream_position for _ in range(2)]
    assert positions == [2, 3]


def test_subscription_to_a_stream_that_does_not_exist_yet_waits(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream = unique("later")
    subscription = client.subscribe_to_stream(stream)
    timer = threading.Timer(
        0.2, client.append_to_stream, (stream,), {"current_version": StreamState.ANY, "events": _events(1)}
    )
    timer.start()
    first = next(subscription)
    subscription.stop()
    timer.join()
    assert (first.stream_name, first.stream_position) == (stream, 0)


def test_all_subscription_from_a_position_excludes_it(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream = unique("suball")
    first = client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=_events(1))
    client.append_to_stream(stream, current_version=0, events=_events(1))
    with client.subscribe_to_all(
        commit_position=first, filter_include=[stream], filter_by_stream_name=True
    ) as sub:
        event = next(sub)
    assert (event.stream_name, event.stream_position) == (stream, 1)


def test_all_subscription_from_end_sees_only_new_events(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream = unique("fromend")
    client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=_events(2))
    with client.subscribe_to_all(from_end=True, filter_include=[stream], filter_by_stream_name=True) as sub:
        client.append_to_stream(stream, current_version=1, events=_events(1))
        event = next(sub)
    assert event.stream_position == 2


def test_sparse_filter_emits_checkpoints_every_window_times_multiplier(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    noise, rare = unique("noise"), unique("rare")
    start = client.get_commit_position(filter_exclude=())
    client.append_to_stream(noise, current_version=StreamState.NO_STREAM, events=_events(25))
    client.append_to_stream(rare, current_version=StreamState.NO_STREAM, events=_events(1))
    last = client.append_to_stream(noise, current_version=24, events=_events(4))
    subscription = client.subscribe_to_all(
        commit_position=start,
        filter_include=[rare],
        filter_by_stream_name=True,
        include_checkpoints=True,
        include_caught_up=True,
        window_size=5,
        checkpoint_interval_multiplier=2,
    )
    received: list[object] = []
    for item in subscription:
        received.append(item)
        if isinstance(item, CaughtUp):
            break
    subscription.stop()
    checkpoints = [r for r in received if isinstance(r, Checkpoint)]
    events = [r for r in received if type(r) is RecordedEvent]
    assert [e.stream_name for e in events] == [rare]
    assert len(checkpoints) == 30 // 10 + 1  # every 10 considered events, plus one at the end of catch-up
    assert checkpoints[-1].commit_position == last
    assert [c.commit_position for c in checkpoints] == sorted(c.commit_position for c in checkpoints)


def test_prefix_filter_over_raw_grpc(
    channel: object, client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    from esdbclient.protos.Grpc import shared_pb2, streams_pb2, streams_pb2_grpc

    prefix = unique("pfx")
    client.append_to_stream(f"{prefix}-a", current_version=StreamState.NO_STREAM, events=_events(1))
    client.append_to_stream(f"x{prefix}-b", current_version=StreamState.NO_STREAM, events=_events(1))
    options = streams_pb2.ReadReq.Options(
        all=streams_pb2.ReadReq.Options.AllOptions(start=shared_pb2.Empty()),
        count=100_000,
        filter=streams_pb2.ReadReq.Options.FilterOptions(
            stream_identifier=streams_pb2.ReadReq.Options.FilterOptions.Expression(prefix=[prefix]),
            max=10,
            checkpointIntervalMultiplier=1,
        ),
        uuid_option=streams_pb2.ReadReq.Options.UUIDOption(string=shared_pb2.Empty()),
    )
    stub = streams_pb2_grpc.StreamsStub(channel)
    names = [
        r.event.event.stream_identifier.stream_name.decode()
        for r in stub.Read(streams_pb2.ReadReq(options=options))
    ]
    assert names == [f"{prefix}-a"]
