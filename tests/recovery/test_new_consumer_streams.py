"""New-consumer streams: exactly the filtered history, in per-member order, resumable, clear failures."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
from esdbclient import EventStoreDBClient

from cdr_platform.events import parse_event
from cdr_platform.events.framing import deaggregate
from cdr_platform.lake.checkpoints import checkpoint_store
from cdr_platform.sources.history_export import StreamRequestError, build_filter, export_history
from cdr_platform.sources.kinesis_client import kinesis_client
from cdr_platform.sources.kinesis_reader import list_shards, read_shard_page
from tests.eventstore_helpers import append_events
from tests.kinesis_helpers import new_stream, usage_events

pytestmark = pytest.mark.integration


@pytest.fixture
def esdb(fresh_eventstore_uri: str) -> Iterator[EventStoreDBClient]:
    client = EventStoreDBClient(uri=fresh_eventstore_uri)
    yield client
    client.close()


def _read_stream(client: Any, stream: str) -> dict[str, list]:
    """Every event on the stream, per shard in shard order."""
    per_shard: dict[str, list] = {}
    for shard in list_shards(client, stream):
        page = read_shard_page(client, stream, shard.shard_id, None, max_records=100_000)
        per_shard[shard.shard_id] = [
            parse_event(user.data) for r in page.records for user in deaggregate(r.partition_key, r.data)
        ]
    return per_shard


def test_stream_holds_exactly_the_filtered_history_in_member_order(
    esdb: EventStoreDBClient, kinesis_endpoint: str, lake: duckdb.DuckDBPyConnection
) -> None:
    events = usage_events(600, members=12, prefix="history")
    append_events(esdb, events)
    kinesis = kinesis_client("us-east-1", kinesis_endpoint)
    target = f"consumer-{uuid.uuid4().hex[:8]}"
    wanted_members = ["M0000002", "M0000004", "M0000006"]
    history_filter = build_filter(event_types=["call_ended", "data_session_ended"], member_ids=wanted_members)
    load, save = checkpoint_store(lake, f"stream:{target}")
    report = export_history(
        esdb,
        kinesis,
        target,
        history_filter,
        shards=2,
        load_checkpoint=load,
        save_checkpoint=save,
        page_size=100,
    )
    expected = [
        e
        for e in events
        if e.event_type in {"call_ended", "data_session_ended"} and e.member_id in wanted_members
    ]
    assert {e.member_id for e in expected} == set(wanted_members)
    assert report.created_stream and report.published == len(expected)

    per_shard = _read_stream(kinesis, target)
    got = [e for shard in per_shard.values() for e in shard]
    assert sorted(str(e.event_id) for e in got) == sorted(str(e.event_id) for e in expected)
    for member in wanted_members:
        shards = {s for s, evs in per_shard.items() for e in evs if e.member_id == member}
        assert len(shards) == 1  # one member, one shard
        on_shard = [str(e.event_id) for e in per_shard[shards.pop()] if e.member_id == member]
        assert on_shard == [str(e.event_id) for e in expected if e.member_id == member]

    again = export_history(
        esdb, kinesis, target, history_filter, shards=2, load_checkpoint=load, save_checkpoint=save
    )
    assert again.resumed_from == report.position and again.published == 0  # resumed: nothing repeated


def test_clear_failures(
    esdb: EventStoreDBClient, kinesis_endpoint: str, lake: duckdb.DuckDBPyConnection
) -> None:
    append_events(esdb, usage_events(20, prefix="fail"))
    kinesis = kinesis_client("us-east-1", kinesis_endpoint)
    load, save = checkpoint_store(lake, "stream:nothing")
    with pytest.raises(StreamRequestError, match="matched no event"):
        export_history(
            esdb,
            kinesis,
            f"empty-{uuid.uuid4().hex[:8]}",
            build_filter(member_ids=["M9999999"]),
            load_checkpoint=load,
            save_checkpoint=save,
        )
    existing = new_stream(kinesis, shards=2)
    with pytest.raises(StreamRequestError, match="exists with 2 open shards, not 1"):
        export_history(
            esdb, kinesis, existing, build_filter(), shards=1, load_checkpoint=load, save_checkpoint=save
        )
    with pytest.raises(StreamRequestError, match="unknown event types"):
        build_filter(event_types=["call_teleported"])
