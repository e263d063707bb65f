"""Persistent subscriptions: acks, nacks, retries, parking, timeouts, strategies and management."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from esdbclient import EventStoreDBClient, NewEvent, StreamState
from esdbclient.events import RecordedEvent
from esdbclient.exceptions import AlreadyExists, MaximumSubscriptionsReached, NotFound
from esdbclient.persistent import PersistentSubscription, SubscriptionInfo

pytestmark = pytest.mark.integration


def _events(n: int) -> list[NewEvent]:
    return [NewEvent(type="Happened", data=f'{{"n": {i}}}'.encode()) for i in range(n)]


def _wait_info(
    client: EventStoreDBClient, group: str, stream: str | None, check: Callable[[SubscriptionInfo], bool]
) -> SubscriptionInfo:
    """Poll GetInfo until the check holds (acks travel in batches every 0.2 s)."""
    deadline = time.monotonic() + 5
    while True:
        info = client.get_subscription_info(group, stream)
        if check(info) or time.monotonic() > deadline:
            return info
        time.sleep(0.05)


def _setup(
    client: EventStoreDBClient, unique: Callable[[str], str], n: int, **settings: object
) -> tuple[str, str, PersistentSubscription]:
    stream, group = unique("ps"), unique("group")
    client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=_events(n))
    client.create_subscription_to_stream(group, stream, **settings)  # type: ignore[arg-type]
    return stream, group, client.read_subscription_to_stream(group, stream)


def test_acked_events_advance_the_checkpoint(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream, group, subscription = _setup(client, unique, 3)
    received = [next(subscription) for _ in range(3)]
    for event in received:
        subscription.ack(event)
    info = _wait_info(client, group, stream, lambda i: i.last_checkpointed_event_position == "2")
    subscription.stop()
    assert [e.stream_position for e in received] == [0, 1, 2]
    assert [e.retry_count for e in received] == [0, 0, 0]
    assert info.last_checkpointed_event_position == "2"
    assert info.total_in_flight_messages == 0


def test_nack_retry_redelivers_with_a_higher_retry_count(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    _, _, subscription = _setup(client, unique, 1)
    first = next(subscription)
    subscription.nack(first, "retry")
    again = next(subscription)
    subscription.ack(again)
    subscription.stop()
    assert again.id == first.id and (first.retry_count, again.retry_count) == (0, 1)


def test_nack_skip_moves_on_and_park_then_replay(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream, group, subscription = _setup(client, unique, 3)
    first, second, third = (next(subscription) for _ in range(3))
    subscription.nack(first, "skip")
    subscription.nack(second, "park")
    subscription.ack(third)
    info = _wait_info(
        client,
        group,
        stream,
        lambda i: i.parked_message_count == 1 and i.last_checkpointed_event_position == "2",
    )
    assert info.parked_message_count == 1 and info.last_checkpointed_event_position == "2"
    client.replay_parked_events(group, stream)
    replayed = next(subscription)
    subscription.ack(replayed)
    info = _wait_info(client, group, stream, lambda i: i.total_in_flight_messages == 0)
    subscription.stop()
    assert (replayed.id, replayed.retry_count) == (second.id, 0)
    assert info.parked_message_count == 0


def test_events_are_parked_after_max_retries(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream, group, subscription = _setup(client, unique, 2, max_retry_count=1)
    first = next(subscription)
    subscription.ack(next(subscription))
    subscription.nack(first, "retry")
    retried = next(subscription)
    subscription.nack(retried, "retry")
    info = _wait_info(client, group, stream, lambda i: i.parked_message_count == 1)
    subscription.stop()
    assert (retried.id, retried.retry_count) == (first.id, 1)
    assert info.parked_message_count == 1


def test_unacked_events_are_redelivered_after_the_message_timeout(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    _, _, subscription = _setup(client, unique, 1, message_timeout=0.3)
    started = time.monotonic()
    first = next(subscription)
    again = next(subscription)
    subscription.ack(again)
    subscription.stop()
    assert again.id == first.id and again.retry_count == 1
    assert time.monotonic() - started >= 0.25


def test_round_robin_shares_events_between_two_consumers(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream, group = unique("rr"), unique("group")
    client.create_subscription_to_stream(group, stream, consumer_strategy="RoundRobin")
    consumers = [client.read_subscription_to_stream(group, stream) for _ in range(2)]
    client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=_events(10))
    got: list[list[int]] = [[], []]

    def consume(index: int) -> None:
        for event in consumers[index]:
            consumers[index].ack(event)
            got[index].append(event.stream_position)
            if sum(len(g) for g in got) >= 10:
                break

    threads = [threading.Thread(target=consume, args=(i,), daemon=True) for i in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while sum(len(g) for g in got) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    for consumer in consumers:
        consumer.stop()
    assert sorted(got[0] + got[1]) == list(range(10))
    assert got[0] and got[1]
    assert abs(len(got[0]) - len(got[1])) <= 1


def test_list_info_update_delete(client: EventStoreDBClient, unique: Callable[[str], str]) -> None:
    stream, group = unique("mgmt"), unique("group")
    client.create_subscription_to_stream(group, stream, stream_position=5, message_timeout=12.5)
    with pytest.raises(AlreadyExists):
        client.create_subscription_to_stream(group, stream)
    info = client.get_subscription_info(group, stream)
    assert (info.event_source, info.group_name, info.start_from, info.message_timeout) == (
        stream,
        group,
        "5",
        12.5,
    )
    assert info.consumer_strategy == "DispatchToSingle"
    assert [i.group_name for i in client.list_subscriptions_to_stream(stream)] == [group]
    assert group in {i.group_name for i in client.list_subscriptions()}
    client.update_subscription_to_stream(group, stream, max_retry_count=3, consumer_strategy="RoundRobin")
    updated = client.get_subscription_info(group, stream)
    assert (updated.max_retry_count, updated.consumer_strategy, updated.start_from) == (3, "RoundRobin", "5")
    client.delete_subscription(group, stream)
    with pytest.raises(NotFound):
        client.get_subscription_info(group, stream)
    with pytest.raises(NotFound):
        client.delete_subscription(group, stream)
    assert client.list_subscriptions_to_stream(stream) == []


def test_all_subscription_with_filter_and_max_subscribers(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream, group = unique("psall"), unique("group")
    start = client.get_commit_position(filter_exclude=())
    client.create_subscription_to_all(
        group,
        commit_position=start,
        filter_include=[stream],
        filter_by_stream_name=True,
        max_subscriber_count=1,
    )
    client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=_events(2))
    subscription = client.read_subscription_to_all(group)
    received = [next(subscription) for _ in range(2)]
    with pytest.raises(MaximumSubscriptionsReached):
        next(iter(client.read_subscription_to_all(group)))
    for event in received:
        subscription.ack(event)
    subscription.stop()
    assert [(e.stream_name, e.stream_position) for e in received] == [(stream, 0), (stream, 1)]
    assert all(isinstance(e, RecordedEvent) for e in received)
    info = client.get_subscription_info(group)
    assert info.event_source == "$all" and info.start_from == f"C:{start}/P:{start}"
    with pytest.raises(NotFound):
        next(iter(client.read_subscription_to_all(unique("nogroup"))))
