"""Streams API semantics of the dev EventStoreDB server, through the real esdbclient."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from esdbclient import EventStoreDBClient, NewEvent, StreamState
from esdbclient.exceptions import (
    GrpcError,
    MaximumAppendSizeExceededError,
    NotFound,
    StreamIsDeleted,
    WrongCurrentVersion,
)

pytestmark = pytest.mark.integration


def _events(n: int, event_type: str = "Happened") -> list[NewEvent]:
    return [NewEvent(type=event_type, data=f'{{"n": {i}}}'.encode()) for i in range(n)]


def test_revisions_are_dense_and_positions_monotonic_non_contiguous(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream = unique("dense")
    last = client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=_events(3))
    client.append_to_stream(stream, current_version=2, events=_events(2))
    recorded = client.get_stream(stream)
    assert [e.stream_position for e in recorded] == [0, 1, 2, 3, 4]
    positions = [e.commit_position for e in recorded]
    assert all(p is not None and p > 0 for p in positions)
    assert positions == sorted(set(positions))  # type: ignore[type-var]
    assert positions[1] - positions[0] > 1  # byte-offset-like, not a counter
    assert last == positions[2]  # an append returns its last event's position


def test_expected_version_mismatches_report_the_actual_revision(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream = unique("expect")
    with pytest.raises(WrongCurrentVersion, match="does not exist"):  # Append, in band
        client.append_to_stream(stream, current_version=StreamState.EXISTS, events=_events(1)[0])
    with pytest.raises(NotFound):  # BatchAppend: esdbclient maps current_no_stream to NotFound
        client.append_to_stream(stream, current_version=5, events=_events(2))
    client.append_to_stream(stream, current_version=StreamState.ANY, events=_events(2))
    with pytest.raises(WrongCurrentVersion, match="Current version is 1"):
        client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=_events(1)[0])
    with pytest.raises(WrongCurrentVersion, match="Current position is 1"):
        client.append_to_stream(stream, current_version=0, events=_events(2))
    client.append_to_stream(stream, current_version=StreamState.EXISTS, events=_events(1))
    assert client.get_current_version(stream) == 2


@pytest.mark.parametrize("batched", [True, False], ids=["BatchAppend", "Append"])
def test_idempotent_append_returns_original_position_and_writes_nothing(
    client: EventStoreDBClient, unique: Callable[[str], str], batched: bool
) -> None:
    stream = unique("idem")
    events = _events(3) if batched else _events(1)
    payload: NewEvent | list[NewEvent] = events if batched else events[0]
    first = client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=payload)
    again = client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=payload)
    assert again == first
    after_any = client.append_to_stream(stream, current_version=StreamState.ANY, events=payload)
    assert after_any == first
    assert len(client.get_stream(stream)) == len(events)


def test_partial_overlap_plus_new_events_is_a_version_conflict(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream = unique("overlap")
    events = _events(2)
    client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=events)
    with pytest.raises(WrongCurrentVersion):
        client.append_to_stream(stream, current_version=StreamState.ANY, events=[*events[:1], *_events(1)])
    with pytest.raises(WrongCurrentVersion):
        client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=[*events, *_events(1)])
    assert len(client.get_stream(stream)) == 2


def test_stream_reads_include_the_given_revision_both_ways(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream = unique("bounds")
    client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=_events(5))
    assert [e.stream_position for e in client.get_stream(stream, stream_position=2)] == [2, 3, 4]
    backwards = client.get_stream(stream, stream_position=2, backwards=True)
    assert [e.stream_position for e in backwards] == [2, 1, 0]
    assert [e.stream_position for e in client.get_stream(stream, backwards=True, limit=2)] == [4, 3]
    assert client.get_stream(stream, stream_position=9) == ()
    with pytest.raises(NotFound):
        client.get_stream(unique("missing"))


def test_read_all_forwards_includes_and_backwards_excludes_the_position(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream = unique("allbounds")
    client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=_events(3))
    mine = [e for e in client.read_all() if e.stream_name == stream]
    middle = mine[1].commit_position
    assert middle is not None
    forwards = [e for e in client.read_all(commit_position=middle, limit=2)]
    assert [(e.stream_name, e.stream_position) for e in forwards] == [(stream, 1), (stream, 2)]
    backwards = [e for e in client.read_all(commit_position=middle, backwards=True, limit=1)]
    assert [(e.stream_name, e.stream_position) for e in backwards] == [(stream, 0)]


def test_all_starts_with_a_system_event_hidden_by_the_default_filter(client: EventStoreDBClient) -> None:
    first = next(iter(client.read_all(filter_exclude=(), limit=1)))
    assert first.type.startswith("$")
    assert first.commit_position is not None and first.commit_position > 0
    assert all(not e.type.startswith("$") for e in client.read_all())


def test_filters_use_unanchored_regex_search(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream = unique("regex")
    client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=_events(1, "OrderPlaced"))
    by_type = [e for e in client.read_all(filter_include=["Placed"]) if e.stream_name == stream]
    assert by_type == []  # esdbclient anchors include patterns with ^...$
    by_name = list(client.read_all(filter_include=[f"{stream}"], filter_by_stream_name=True))
    assert [e.stream_name for e in by_name] == [stream]
    by_type_regex = [e for e in client.read_all(filter_include=[".*Placed"]) if e.stream_name == stream]
    assert len(by_type_regex) == 1


def test_append_over_one_mebibyte_is_rejected(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream = unique("big")
    big = NewEvent(type="Big", data=b"x" * (1024 * 1024 + 1))
    with pytest.raises(MaximumAppendSizeExceededError):
        client.append_to_stream(stream, current_version=StreamState.ANY, events=[big])
    with pytest.raises(GrpcError, match="Maximum Append Size"):  # Append answers INVALID_ARGUMENT
        client.append_to_stream(stream, current_version=StreamState.ANY, events=big)
    client.append_to_stream(
        stream, current_version=StreamState.ANY, events=[NewEvent(type="Ok", data=b"x" * 1000)]
    )
    assert len(client.get_stream(stream)) == 1


def test_stream_metadata_round_trips_and_truncates(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream = unique("meta")
    assert client.get_stream_metadata(stream) == ({}, StreamState.NO_STREAM)
    client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=_events(4))
    client.set_stream_metadata(stream, metadata={"$tb": 2, "owner": "billing"})
    metadata, version = client.get_stream_metadata(stream)
    assert metadata == {"$tb": 2, "owner": "billing"} and version == 0
    assert [e.stream_position for e in client.get_stream(stream)] == [2, 3]
    client.set_stream_metadata(stream, metadata={"$maxCount": 1}, current_version=0)
    assert [e.stream_position for e in client.get_stream(stream)] == [3]


def test_soft_delete_then_append_continues_revisions(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream = unique("soft")
    client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=_events(3))
    client.delete_stream(stream, current_version=2)
    with pytest.raises(NotFound):
        client.get_stream(stream)
    assert client.get_current_version(stream) is StreamState.NO_STREAM
    metadata, _ = client.get_stream_metadata(stream)
    assert metadata["$tb"] == 2**63 - 1
    client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=_events(2))
    assert [e.stream_position for e in client.get_stream(stream)] == [3, 4]
    assert client.get_stream_metadata(stream)[0]["$tb"] == 3
    with pytest.raises(NotFound):
        client.delete_stream(unique("never"), current_version=StreamState.ANY)
    with pytest.raises(WrongCurrentVersion):
        client.delete_stream(stream, current_version=1)


def test_tombstoned_stream_is_deleted_for_reads_appends_and_deletes(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stream = unique("tomb")
    client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=_events(2))
    client.tombstone_stream(stream, current_version=1)
    with pytest.raises(StreamIsDeleted):
        client.get_stream(stream)
    with pytest.raises(StreamIsDeleted):
        client.append_to_stream(stream, current_version=StreamState.ANY, events=_events(1))
    with pytest.raises(StreamIsDeleted):
        client.delete_stream(stream, current_version=StreamState.ANY)
    with pytest.raises(StreamIsDeleted):
        client.tombstone_stream(stream, current_version=StreamState.ANY)
    with pytest.raises(StreamIsDeleted):
        client.get_stream_metadata(stream)


def test_concurrent_writers_get_dense_revisions_and_unique_positions(
    client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    shared = unique("shared")
    own = [unique("own") for _ in range(4)]

    def write(index: int) -> list[int]:
        positions = []
        for _ in range(10):
            positions.append(
                client.append_to_stream(shared, current_version=StreamState.ANY, events=_events(2))
            )
            positions.append(
                client.append_to_stream(own[index], current_version=StreamState.ANY, events=_events(1))
            )
        return positions

    with ThreadPoolExecutor(4) as pool:
        returned = [p for chunk in pool.map(write, range(4)) for p in chunk]
    shared_events = client.get_stream(shared)
    assert [e.stream_position for e in shared_events] == list(range(80))
    for name in own:
        assert [e.stream_position for e in client.get_stream(name)] == list(range(10))
    all_positions = [e.commit_position for e in client.read_all(filter_exclude=())]
    assert len(all_positions) == len(set(all_positions))
    assert len(returned) == len(set(returned)) == 80
    assert len({e.id for e in shared_events}) == 80
