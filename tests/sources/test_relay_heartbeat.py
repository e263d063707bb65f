"""Relay heartbeats: every open shard learns through which opening event time the relay has published,
so a quiet shard does not hold the executives' as-of time back (``sources/relay_heartbeat``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from esdbclient import EventStoreDBClient

from cdr_platform.devstack.kinesis_local import local_kinesis_client
from cdr_platform.events import OPENING_EVENT_TYPES, Event, encode_event, make_event
from cdr_platform.events.framing import UserRecord, pack_records
from cdr_platform.lake.kinesis_landing import land_kinesis_stream
from cdr_platform.lake.landing import load_shard_checkpoints
from cdr_platform.lake.schema import ensure_schema
from cdr_platform.settings import PROJECT_ROOT
from cdr_platform.simulator.producers import ProducerClock
from cdr_platform.sources.kinesis_reader import list_shards, read_shard_page
from cdr_platform.sources.relay import Relay, RelayConfig, RelayState, write_checkpoint
from cdr_platform.sources.relay_heartbeat import (
    HEARTBEAT_PARTITION_KEY,
    Heartbeat,
    clock_time,
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
def test_only_opening_events_and_clock_ticks_move_the_published_time() -> None:
    assert clock_time("call_attempted", encode_event(_event("call_attempted", "o1", T0))) == T0
    assert clock_time("call_ended", encode_event(_event("call_ended", "o2", T0))) is None
    assert clock_time("producer_clock", encode_clock_tick(T0)) == T0
    assert clock_time("call_attempted", encode_clock_tick(T0)) is None  # no occurred_at
    assert clock_time("call_attempted", b"not json") is None
    assert clock_time("call_attempted", b'{"occurred_at": "2026-01-05T09:00:00"}') is None  # naive
    assert clock_time("call_attempted", b'["occurred_at"]') is None


@pytest.mark.unit
def test_the_dbt_watermark_follows_the_same_opening_events() -> None:
    macro = (PROJECT_ROOT / "dbt_project" / "macros" / "exec_watermarks.sql").read_text()
    listed = re.search(r"opening_events as \(.*?event_type in \(([^)]*)\)", macro, re.S)
    assert listed is not None
    assert set(re.findall(r"'(\w+)'", listed.group(1))) == OPENING_EVENT_TYPES


def _heartbeats_by_shard(kinesis, stream: str) -> dict[str, list[tuple[int, Heartbeat]]]:
    """Per shard, (index among the shard's records, heartbeat) of every heartbeat on it."""
    found: dict[str, list[tuple[int, Heartbeat]]] = {}
    for shard in list_shards(kinesis, stream):
        page = read_shard_page(kinesis, stream, shard.shard_id, None)
        found[shard.shard_id] = [
            (index, heartbeat)
            for index, record in enumerate(page.records)
            if (heartbeat := decode_heartbeat(record.partition_key, record.data)) is not None
        ]
    return found


@pytest.mark.integration
def test_every_shard_gets_the_latest_opening_time_and_landing_keeps_it(
    eventstore_uri: str, kinesis_endpoint: str, tmp_path: Path, lake: duckdb.DuckDBPyConnection
) -> None:
    eventstore = EventStoreDBClient(eventstore_uri)
    kinesis = local_kinesis_client(kinesis_endpoint)
    stream = new_stream(kinesis, 4)
    checkpoint = tmp_path / "relay.json"
    write_checkpoint(checkpoint, RelayState(eventstore.get_commit_position() or None))
    config = RelayConfig(stream, checkpoint, batch_events=100)
    ensure_schema(lake)

    # One member's call and SMS: all on one shard. The call ends (a completion) after the SMS.
    first = [
        _event("call_attempted", "hb-c1", T0),
        _event("sms_submitted", "hb-s1", T0 + timedelta(minutes=1)),
        _event("call_ended", "hb-c1", T0 + timedelta(minutes=5)),
    ]
    append_events(eventstore, first, per_stream=1)
    result = Relay(eventstore, kinesis, config).run(until_caught_up=True)
    assert result.heartbeats >= 1 and result.events_published == len(first)

    by_shard = _heartbeats_by_shard(kinesis, stream)
    assert len(by_shard) == 4
    for shard, heartbeats in by_shard.items():
        assert heartbeats, f"{shard} got no heartbeat"
        assert heartbeats[-1][1].published_through == T0 + timedelta(minutes=1), shard  # not the call end
    busy = [shard for shard in by_shard if by_shard[shard][0][0] > 0]
    assert len(busy) == 1  # the member's shard: its events come before the heartbeat

    report = land_kinesis_stream(lake, kinesis, stream)
    assert (report.received, report.landed, report.dead_lettered) == (len(first), len(first), 0)
    landed = load_shard_checkpoints(lake, stream)
    assert {s: c.published_through for s, c in landed.items()} == {
        s: T0 + timedelta(minutes=1) for s in by_shard
    }

    # A later top-up moves every shard on; a page of heartbeats alone keeps the latest time.
    append_events(eventstore, [_event("topup_completed", "hb-t1", T0 + timedelta(minutes=9))], per_stream=1)
    Relay(eventstore, kinesis, config).run(until_caught_up=True)
    report = land_kinesis_stream(lake, kinesis, stream)
    assert (report.received, report.dead_lettered) == (1, 0)
    landed = load_shard_checkpoints(lake, stream)
    assert {c.published_through for c in landed.values()} == {T0 + timedelta(minutes=9)}
    assert lake.execute("SELECT count(*) FROM raw.usage_events").fetchone() == (len(first) + 1,)


@pytest.mark.integration
def test_heartbeats_can_be_switched_off(eventstore_uri: str, kinesis_endpoint: str, tmp_path: Path) -> None:
    eventstore = EventStoreDBClient(eventstore_uri)
    kinesis = local_kinesis_client(kinesis_endpoint)
    stream = new_stream(kinesis, 2)
    checkpoint = tmp_path / "relay.json"
    write_checkpoint(checkpoint, RelayState(eventstore.get_commit_position() or None))
    append_events(eventstore, [_event("call_attempted", "hb-off", T0)], per_stream=1)
    config = RelayConfig(stream, checkpoint, heartbeat_interval_s=0)
    assert Relay(eventstore, kinesis, config).run(until_caught_up=True).heartbeats == 0
    assert not any(_heartbeats_by_shard(kinesis, stream).values())


@pytest.mark.integration
def test_a_producer_clock_tick_moves_the_heartbeat_and_is_not_published(
    eventstore_uri: str, kinesis_endpoint: str, tmp_path: Path
) -> None:
    eventstore = EventStoreDBClient(eventstore_uri)
    kinesis = local_kinesis_client(kinesis_endpoint)
    stream = new_stream(kinesis, 2)
    checkpoint = tmp_path / "relay.json"
    write_checkpoint(checkpoint, RelayState(eventstore.get_commit_position() or None))
    append_events(eventstore, [_event("sms_submitted", "hb-tick", T0)], per_stream=1)
    ProducerClock(eventstore).tick(T0 + timedelta(minutes=3))  # a quiet spell: only the clock moves
    result = Relay(eventstore, kinesis, RelayConfig(stream, checkpoint)).run(until_caught_up=True)
    assert (result.events_read, result.events_published) == (1, 1)
    heartbeats = _heartbeats_by_shard(kinesis, stream)
    assert len(heartbeats) == 2 and all(heartbeats.values())
    assert {found[-1][1].published_through for found in heartbeats.values()} == {T0 + timedelta(minutes=3)}
    assert len(read_user_records(kinesis, stream)) == 1  # the event; no tick, no heartbeat
