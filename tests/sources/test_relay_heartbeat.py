"""Relay heartbeats: every open shard learns through which opening event time the relay has published,
so a quiet shard does not hold the executives' as-of time back (``sources/relay_heartbeat``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from esdbclient import EventStoreDBClient

from cdr_platform.devstack.kinesis_local import local_kinesis_client
from cdr_platform.events import OPENING_EVENT_TYPES, Event, encode_event, make_event
from cdr_platform.events.framing import UserRecord, pack_records
from cdr_platform.lake.kinesis_landing import land_kinesis_stream
from cdr_platform.lake.landing import LandingBatch, ShardCheckpoint, land_batch, load_shard_checkpoints
from cdr_platform.lake.maintenance import prune_checkpoints
from cdr_platform.lake.schema import ensure_schema
from cdr_platform.settings import PROJECT_ROOT
from cdr_platform.simulator.producers import ProducerClock
from cdr_platform.sources.kinesis_publisher import KinesisPublisher
from cdr_platform.sources.kinesis_reader import list_shards, read_shard_page
from cdr_platform.sources.relay import Relay, RelayConfig, RelayState, write_checkpoint
from cdr_platform.sources.relay_heartbeat import (
    HEARTBEAT_PARTITION_KEY,
    ClockReading,
    Heartbeat,
    clock_tick_time,
    decode_heartbeat,
    encode_clock_tick,
    encode_heartbeat,
)
from tests.events.samples import SAMPLE_PAYLOADS
from tests.eventstore_helpers import append_events
from tests.kinesis_helpers import new_stream
from tests.simulator.kinesis_readback import read_user_records

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _event(kind: str, key: str, at: datetime, member: str = "M-heartbeat") -> Event:
    return make_event(
        kind,
        business_key=key,
        occurred_at=at,
        member_id=member,
        correlation_id=key,
        producer="msc-mediation",
        payload=SAMPLE_PAYLOADS[kind],
    )


@pytest.mark.unit
def test_a_heartbeat_round_trips_and_nothing_else_reads_as_one() -> None:
    heartbeat = Heartbeat(T0, 42)
    data = encode_heartbeat(heartbeat)
    assert decode_heartbeat(HEARTBEAT_PARTITION_KEY, data) == heartbeat
    assert decode_heartbeat("M0000001", data) is None  # the key and the body both say heartbeat
    event = encode_event(_event("sms_submitted", "hb-unit", T0, member=HEARTBEAT_PARTITION_KEY))
    assert decode_heartbeat(HEARTBEAT_PARTITION_KEY, event) is None  # a member with that id: an event
    aggregate = next(iter(pack_records([UserRecord(HEARTBEAT_PARTITION_KEY, data)] * 2)))
    assert decode_heartbeat(aggregate.partition_key, aggregate.data) is None
    assert decode_heartbeat(HEARTBEAT_PARTITION_KEY, data.replace(b"+00:00", b"")) is None  # naive time


@pytest.mark.unit
def test_the_clock_is_what_two_members_reach_or_a_producer_tick() -> None:
    clock = ClockReading()
    clock.read("call_attempted", encode_event(_event("call_attempted", "c1", T0, member="A")))
    assert clock.time is None  # one member alone proves nothing
    clock.read("call_attempted", encode_event(_event("call_attempted", "c2", T0 + timedelta(hours=80), "A")))
    clock.read("sms_submitted", encode_event(_event("sms_submitted", "s1", T0 + timedelta(minutes=1), "B")))
    assert clock.time == T0 + timedelta(minutes=1)  # A's far-ahead event does not pull it along
    clock.read("call_ended", encode_event(_event("call_ended", "c1", T0 + timedelta(minutes=9), "C")))
    clock.read("sms_submitted", b'{"event_type": "sms_submitted", "occurred_at": "2030-01-01T00:00:00Z"}')
    assert clock.time == T0 + timedelta(minutes=1)  # completions and records that do not parse: no
    topup = _event("topup_completed", "t1", T0 + timedelta(minutes=2), "C")
    clock.read("topup_completed", encode_event(topup))
    assert clock.time == T0 + timedelta(minutes=2)  # B fell out of the two latest members
    clock.read("producer_clock", encode_clock_tick(T0 + timedelta(minutes=5)))
    assert clock.time == T0 + timedelta(minutes=5)
    clock.read("producer_clock", b'{"clock": "2026-01-05T09:00:00"}')  # naive: ignored
    assert clock.time == T0 + timedelta(minutes=5)
    assert clock_tick_time(encode_clock_tick(T0)) == T0


@pytest.mark.unit
def test_a_checkpoint_row_keeps_the_shard_heartbeat_through_pruning(lake: duckdb.DuckDBPyConnection) -> None:
    ensure_schema(lake)
    shard = "shardId-000000000000"
    land_batch(lake, LandingBatch("kinesis", [], [ShardCheckpoint("s", shard, "1", published_through=T0)]))
    land_batch(lake, LandingBatch("kinesis", [], [ShardCheckpoint("s", shard, "2")]))  # no heartbeat on it
    assert prune_checkpoints(lake) == 1
    (kept,) = load_shard_checkpoints(lake, "s").values()
    assert (kept.sequence_number, kept.published_through) == ("2", T0)


@pytest.mark.unit
def test_an_older_checkpoint_table_gets_the_heartbeat_column(lake: duckdb.DuckDBPyConnection) -> None:
    lake.execute("CREATE SCHEMA IF NOT EXISTS meta")
    lake.execute("DROP TABLE IF EXISTS meta.kinesis_checkpoints")
    lake.execute(
        "CREATE TABLE meta.kinesis_checkpoints (stream_name VARCHAR NOT NULL, shard_id VARCHAR NOT NULL, "
        "sequence_number VARCHAR, shard_ended BOOLEAN NOT NULL, updated_at TIMESTAMPTZ NOT NULL)"
    )
    lake.execute("INSERT INTO meta.kinesis_checkpoints VALUES ('s', 'a', '7', false, now())")
    ensure_schema(lake)
    assert load_shard_checkpoints(lake, "s")["a"].published_through is None
    land_batch(lake, LandingBatch("kinesis", [], [ShardCheckpoint("s", "a", "8", published_through=T0)]))
    assert load_shard_checkpoints(lake, "s")["a"] == ShardCheckpoint("s", "a", "8", False, T0)


@pytest.mark.unit
def test_the_dbt_watermark_follows_the_same_opening_events() -> None:
    macro = (PROJECT_ROOT / "dbt_project" / "macros" / "exec_watermarks.sql").read_text()
    listed = re.search(r"opening_events as \(.*?event_type in \(([^)]*)\)", macro, re.S)
    assert listed is not None
    assert set(re.findall(r"'(\w+)'", listed.group(1))) == OPENING_EVENT_TYPES


def _heartbeats_by_shard(kinesis: Any, stream: str) -> dict[str, tuple[int, list[tuple[int, Heartbeat]]]]:
    """Per shard: how many records it holds, and (index among them, heartbeat) of each heartbeat."""
    found: dict[str, tuple[int, list[tuple[int, Heartbeat]]]] = {}
    for shard in list_shards(kinesis, stream):
        page = read_shard_page(kinesis, stream, shard.shard_id, None)
        heartbeats = [
            (index, heartbeat)
            for index, record in enumerate(page.records)
            if (heartbeat := decode_heartbeat(record.partition_key, record.data)) is not None
        ]
        found[shard.shard_id] = (len(page.records), heartbeats)
    return found


def _relay_from_now(
    eventstore_uri: str, kinesis_endpoint: str, tmp_path: Path, shards: int
) -> tuple[EventStoreDBClient, Any, str, Path]:
    """(event store client, Kinesis client, a new stream, a relay checkpoint after everything in $all)."""
    eventstore = EventStoreDBClient(eventstore_uri)
    kinesis = local_kinesis_client(kinesis_endpoint)
    stream = new_stream(kinesis, shards)
    checkpoint = tmp_path / "relay.json"
    write_checkpoint(checkpoint, RelayState(eventstore.get_commit_position() or None))
    return eventstore, kinesis, stream, checkpoint


@pytest.mark.integration
def test_every_shard_gets_the_latest_opening_time_and_landing_keeps_it(
    eventstore_uri: str, kinesis_endpoint: str, tmp_path: Path, lake: duckdb.DuckDBPyConnection
) -> None:
    eventstore, kinesis, stream, checkpoint = _relay_from_now(eventstore_uri, kinesis_endpoint, tmp_path, 4)
    config = RelayConfig(stream, checkpoint, batch_events=100)
    ensure_schema(lake)

    # Three members' calls, an SMS and a top-up; the clock is the second latest opening time over
    # distinct members (T0 + 1 min: B's SMS), and A's call end (a completion) does not count.
    first = [
        _event("call_attempted", "hb-c1", T0, member="A"),
        _event("sms_submitted", "hb-s1", T0 + timedelta(minutes=1), member="B"),
        _event("topup_completed", "hb-t1", T0 + timedelta(minutes=2), member="C"),
        _event("call_ended", "hb-c1", T0 + timedelta(minutes=5), member="A"),
    ]
    append_events(eventstore, first, per_stream=1)
    result = Relay(eventstore, kinesis, config).run(until_caught_up=True)
    assert result.heartbeats >= 1 and result.events_published == len(first)

    by_shard = _heartbeats_by_shard(kinesis, stream)
    assert len(by_shard) == 4
    for shard, (records, heartbeats) in by_shard.items():
        assert heartbeats, f"{shard} got no heartbeat"
        last_index, last = heartbeats[-1]
        assert last_index == records - 1, f"{shard}: its heartbeat does not follow its events"
        assert last.published_through == T0 + timedelta(minutes=1), shard

    report = land_kinesis_stream(lake, kinesis, stream)
    assert (report.received, report.landed, report.dead_lettered) == (len(first), len(first), 0)
    landed = load_shard_checkpoints(lake, stream)
    assert {s: c.published_through for s, c in landed.items()} == {
        s: T0 + timedelta(minutes=1) for s in by_shard
    }

    # Later top-ups of two members move every shard on; a page of heartbeats alone keeps the latest time.
    later = [
        _event("topup_completed", f"hb-t{n}", T0 + timedelta(minutes=9), member=member)
        for n, member in ((2, "D"), (3, "E"))
    ]
    append_events(eventstore, later, per_stream=1)
    Relay(eventstore, kinesis, config).run(until_caught_up=True)
    report = land_kinesis_stream(lake, kinesis, stream)
    assert (report.received, report.dead_lettered) == (2, 0)
    landed = load_shard_checkpoints(lake, stream)
    assert {c.published_through for c in landed.values()} == {T0 + timedelta(minutes=9)}
    assert lake.execute("SELECT count(*) FROM raw.usage_events").fetchone() == (len(first) + 2,)


@pytest.mark.integration
def test_heartbeats_can_be_switched_off(eventstore_uri: str, kinesis_endpoint: str, tmp_path: Path) -> None:
    eventstore, kinesis, stream, checkpoint = _relay_from_now(eventstore_uri, kinesis_endpoint, tmp_path, 2)
    append_events(eventstore, [_event("call_attempted", "hb-off", T0)], per_stream=1)
    config = RelayConfig(stream, checkpoint, heartbeat_interval_s=0)
    assert Relay(eventstore, kinesis, config).run(until_caught_up=True).heartbeats == 0
    assert not any(heartbeats for _, heartbeats in _heartbeats_by_shard(kinesis, stream).values())


@pytest.mark.integration
def test_a_producer_clock_tick_moves_the_heartbeat_and_is_not_published(
    eventstore_uri: str, kinesis_endpoint: str, tmp_path: Path
) -> None:
    eventstore, kinesis, stream, checkpoint = _relay_from_now(eventstore_uri, kinesis_endpoint, tmp_path, 2)
    append_events(eventstore, [_event("sms_submitted", "hb-tick", T0)], per_stream=1)
    ProducerClock(eventstore).tick(T0 + timedelta(minutes=3))  # a quiet spell: only the clock moves
    result = Relay(eventstore, kinesis, RelayConfig(stream, checkpoint)).run(until_caught_up=True)
    assert (result.events_read, result.events_published) == (1, 1)
    heartbeats = [found for _, found in _heartbeats_by_shard(kinesis, stream).values()]
    assert len(heartbeats) == 2 and all(heartbeats)
    assert {found[-1][1].published_through for found in heartbeats} == {T0 + timedelta(minutes=3)}
    assert len(read_user_records(kinesis, stream)) == 1  # the SMS: the tick was not published as an event


@pytest.mark.integration
def test_a_round_of_heartbeats_alone_ends_the_landing_run(
    kinesis_endpoint: str, lake: duckdb.DuckDBPyConnection
) -> None:
    kinesis = local_kinesis_client(kinesis_endpoint)
    stream = new_stream(kinesis, 2)
    publisher = KinesisPublisher(kinesis, stream)

    def beat(seconds: int) -> None:
        heartbeat = Heartbeat(T0 + timedelta(seconds=seconds), None)
        publisher.put_on_every_shard(HEARTBEAT_PARTITION_KEY, encode_heartbeat(heartbeat))

    beat(1)
    later = iter(range(2, 100))
    # The relay's next heartbeat arrives while each round commits: a run that went on would never end.
    report = land_kinesis_stream(lake, kinesis, stream, before_commit=lambda _: beat(next(later)))
    assert (report.rounds, report.received) == (1, 0)
    landed = load_shard_checkpoints(lake, stream)
    assert {c.published_through for c in landed.values()} == {T0 + timedelta(seconds=1)}
