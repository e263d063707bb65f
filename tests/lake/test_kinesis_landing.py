"""Kinesis landing against kinesis-local: exactly once through crashes, duplicates and a reshard."""

from __future__ import annotations

import time
from typing import Any

import duckdb
import pytest

from cdr_platform.lake.kinesis_landing import land_kinesis_stream
from cdr_platform.sources.kinesis_client import kinesis_client
from tests.crashes import crash_on_call
from tests.kinesis_helpers import new_stream, put_events, put_raw, usage_events

pytestmark = pytest.mark.integration


class InjectedCrash(RuntimeError):
    pass


@pytest.fixture
def client(kinesis_endpoint: str) -> Any:
    return kinesis_client("us-east-1", kinesis_endpoint)


def _ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [str(r[0]) for r in con.execute("SELECT event_id FROM raw.usage_events").fetchall()]


def test_lands_every_event_once_and_rerun_adds_nothing(lake: duckdb.DuckDBPyConnection, client: Any) -> None:
    stream = new_stream(client)
    events = usage_events(400)
    put_events(client, stream, events)
    report = land_kinesis_stream(lake, client, stream, records_per_page=7)
    assert report.landed == 400
    assert sorted(_ids(lake)) == sorted(str(e.event_id) for e in events)
    assert land_kinesis_stream(lake, client, stream).received == 0


def test_crash_between_read_and_commit_lands_exactly_once(
    lake: duckdb.DuckDBPyConnection, client: Any
) -> None:
    stream = new_stream(client)
    events = usage_events(200, prefix="crash")
    put_events(client, stream, events)
    with pytest.raises(InjectedCrash):
        land_kinesis_stream(
            lake,
            client,
            stream,
            records_per_page=5,
            before_commit=crash_on_call(2, InjectedCrash("killed between reading and committing")),
        )
    partial = len(_ids(lake))
    assert 0 < partial < 200
    land_kinesis_stream(lake, client, stream)
    assert sorted(_ids(lake)) == sorted(str(e.event_id) for e in events)


def test_crash_after_commit_before_success_changes_nothing(
    lake: duckdb.DuckDBPyConnection, client: Any
) -> None:
    stream = new_stream(client)
    put_events(client, stream, usage_events(150, prefix="after"))

    def die_after_first_commit(line: str) -> None:  # called once a round has committed
        raise InjectedCrash(f"run died before reporting success: {line}")

    with pytest.raises(InjectedCrash):
        land_kinesis_stream(lake, client, stream, records_per_page=3, log=die_after_first_commit)
    committed = len(_ids(lake))
    assert 0 < committed < 150
    again = land_kinesis_stream(lake, client, stream)
    assert again.duplicates == 0  # the committed round is not read again: its checkpoint moved with it
    assert len(_ids(lake)) == 150


def test_redelivered_records_and_malformed_records(lake: duckdb.DuckDBPyConnection, client: Any) -> None:
    stream = new_stream(client)
    events = usage_events(60, prefix="dup")
    put_events(client, stream, events)
    put_events(client, stream, events[:25])  # redelivered by an at-least-once producer
    put_raw(client, stream, [("M1", b"{not json"), ("M2", b'{"event_type": "call_teleported"}')])
    report = land_kinesis_stream(lake, client, stream)
    assert (report.landed, report.duplicates, report.dead_lettered) == (60, 25, 2)
    reasons = sorted(r[0] for r in lake.execute("SELECT reason FROM raw.dead_letter").fetchall())
    assert reasons == ["not_json", "unknown_event_type"]


def test_reshard_during_ingestion_loses_nothing_and_reads_parents_first(
    lake: duckdb.DuckDBPyConnection, client: Any
) -> None:
    stream = new_stream(client, shards=1)
    before = usage_events(120, prefix="before")
    put_events(client, stream, before)
    land_kinesis_stream(lake, client, stream, records_per_page=2, max_rounds=1)  # part of it only
    client.update_shard_count(StreamName=stream, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    deadline = time.monotonic() + 30
    while (
        client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamStatus"]
        != "ACTIVE"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    after = usage_events(120, prefix="after")
    put_events(client, stream, after)

    rounds: list[list[tuple[str, bool]]] = []
    land_kinesis_stream(
        lake,
        client,
        stream,
        records_per_page=10,
        before_commit=lambda b: rounds.append([(c.shard_id, c.shard_ended) for c in b.shard_checkpoints]),
    )
    assert sorted(_ids(lake)) == sorted(str(e.event_id) for e in before + after)
    parent_end = next(i for i, r in enumerate(rounds) if ("shardId-000000000000", True) in r)
    child_rounds = [i for i, r in enumerate(rounds) for shard, _ in r if shard != "shardId-000000000000"]
    assert child_rounds and min(child_rounds) > parent_end
