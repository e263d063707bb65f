"""Parallel landing on a Postgres catalog: key-range claims, concurrent shard workers, each event once."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import duckdb
import pytest

from cdr_platform.devstack.stack import Devstack
from cdr_platform.events import encode_event
from cdr_platform.lake.claims import CLAIM_RANGES, claim_for_events, key_range, ranged_claims
from cdr_platform.lake.connection import connect_lake, in_transaction, is_retryable_conflict
from cdr_platform.lake.kinesis_landing import land_kinesis_stream
from cdr_platform.lake.landing import LandingBatch, SourceRecord, land_batch, load_shard_checkpoints
from cdr_platform.lake.schema import ensure_schema
from cdr_platform.settings import PROJECT_ROOT
from cdr_platform.sources.kinesis_client import kinesis_client
from cdr_platform.sources.kinesis_reader import list_shards
from tests.kinesis_helpers import new_stream, put_events, usage_events
from tests.production_profile import ProductionLake, new_production_lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# One worker process: lands events [first, last) in chunks of 25, every chunk its own transaction.
WORKER = textwrap.dedent(
    """
    import json, sys
    from cdr_platform.events import encode_event
    from cdr_platform.lake.connection import connect_lake
    from cdr_platform.lake.landing import LandingBatch, SourceRecord, land_batch
    from tests.kinesis_helpers import usage_events

    catalog, data_path, name, first, last = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:6])
    events = usage_events(400, prefix="same")
    con = connect_lake(catalog, data_path)
    landed = duplicates = 0
    for start in range(first, last, 25):
        records = [SourceRecord(encode_event(events[i]), f"{name}/{i}") for i in range(start, start + 25)]
        result = land_batch(con, LandingBatch(name, records))
        landed, duplicates = landed + result.landed, duplicates + result.duplicates
    print(json.dumps({"landed": landed, "duplicates": duplicates}))
    """
)


def _lake_with_schema(lake: ProductionLake) -> duckdb.DuckDBPyConnection:
    con = connect_lake(lake.catalog, lake.data_path)
    ensure_schema(con)
    return con


def _counts(lake: ProductionLake) -> tuple[int, int]:
    con = connect_lake(lake.catalog, lake.data_path, read_only=True)
    try:
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM raw.usage_events"
        ).fetchone()
    finally:
        con.close()
    return total, distinct


def test_concurrent_workers_on_overlapping_redeliveries_land_each_event_once(
    production_stack: Devstack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three processes commit at once; every event is delivered to two or three of them."""
    lake = new_production_lake(production_stack, monkeypatch)
    _lake_with_schema(lake).close()
    spans = {"a": (0, 300), "b": (100, 400), "c": (0, 400)}
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-c", WORKER, lake.catalog, lake.data_path, name, str(first), str(last)],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (first, last) in spans.items()
    }
    reports = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
        reports[name] = json.loads(stdout.strip().splitlines()[-1])
    assert _counts(lake) == (400, 400)
    assert sum(r["landed"] for r in reports.values()) == 400
    assert sum(r["duplicates"] for r in reports.values()) == 300 + 300 + 400 - 400


def _split_every_shard(client: Any, stream: str) -> None:
    """Split each open shard at the middle of its hash-key range (2 shards become 4 aligned children)."""
    for shard in [s for s in list_shards(client, stream) if s.ending_sequence is None]:
        middle = (shard.start_hash + shard.end_hash + 1) // 2
        client.split_shard(StreamName=stream, ShardToSplit=shard.shard_id, NewStartingHashKey=str(middle))
        deadline = time.monotonic() + 30
        while (
            client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamStatus"]
            != "ACTIVE"
        ):
            assert time.monotonic() < deadline, "the split did not finish"
            time.sleep(0.1)


def test_shard_groups_across_a_reshard_and_another_path_land_each_event_once(
    production_stack: Devstack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every event is on the stream twice, once before and once after a reshard (2 to 4 shards, so the
    redelivery reads from a child shard), and a third worker lands all of them by another path (as
    EventStoreDB landing or reconciliation would), all three committing at the same time."""
    lake = new_production_lake(production_stack, monkeypatch)
    _lake_with_schema(lake).close()
    endpoint = production_stack.config.kinesis_endpoint_url
    client = kinesis_client("us-east-1", endpoint)
    stream = new_stream(client, shards=2)
    events = usage_events(600, members=40, prefix="groups")
    put_events(client, stream, events)
    _split_every_shard(client, stream)
    put_events(client, stream, events)  # the redelivery, on the children
    shards = list_shards(client, stream)
    half = min(s.end_hash for s in shards if not s.parent_ids)  # where the first parent ends
    groups = [  # each group: a parent and the children of its half of the hash-key space
        [s.shard_id for s in shards if (s.end_hash <= half) == lower] for lower in (True, False)
    ]
    assert [len(g) for g in groups] == [3, 3]

    def kinesis_worker(group: list[str]) -> int:
        con = connect_lake(lake.catalog, lake.data_path)
        try:
            own = kinesis_client("us-east-1", endpoint)
            return land_kinesis_stream(con, own, stream, records_per_page=50, shard_ids=group).received
        finally:
            con.close()

    def other_path() -> int:
        con = connect_lake(lake.catalog, lake.data_path)
        try:
            landed = 0
            for start in range(0, len(events), 50):
                records = [
                    SourceRecord(encode_event(e), f"es/{start + i}")
                    for i, e in enumerate(events[start : start + 50])
                ]
                landed += land_batch(con, LandingBatch("eventstore", records)).landed
            return landed
        finally:
            con.close()

    with ThreadPoolExecutor(3) as pool:
        received = [pool.submit(kinesis_worker, group) for group in groups]
        replayed = pool.submit(other_path)
        received_counts = [future.result() for future in received]
        replayed.result()
    assert all(received_counts) and sum(received_counts) == 1200  # every copy was read
    assert _counts(lake) == (600, 600)
    con = connect_lake(lake.catalog, lake.data_path, read_only=True)
    try:
        assert set(load_shard_checkpoints(con, stream)) == {s.shard_id for s in shards}
    finally:
        con.close()


def _members_in_ranges() -> tuple[str, str, str]:
    """Two members in one claim range and a third in another."""
    by_range: dict[int, list[str]] = {}
    for i in range(1000):
        by_range.setdefault(key_range(f"M{i:07d}"), []).append(f"M{i:07d}")
    first, second = sorted(by_range)[:2]
    return by_range[first][0], by_range[first][1], by_range[second][0]


def _race(first: duckdb.DuckDBPyConnection, second: duckdb.DuckDBPyConnection, a: str, b: str) -> None:
    """Both claim (for member ``a``, then ``b``) and insert a row; ``first`` commits, then ``second``."""
    now = datetime.now(UTC)
    for con, member in ((first, a), (second, b)):
        con.execute("BEGIN")
        claim_for_events(con, {"usage": [member]}, now)
        con.execute("INSERT INTO meta.replay_ranges VALUES (?, 'test')", [member])
    first.execute("COMMIT")
    try:
        second.execute("COMMIT")
    except duckdb.Error:
        with contextlib.suppress(duckdb.Error):  # a failed COMMIT may have ended the transaction
            second.execute("ROLLBACK")
        raise


def test_claims_conflict_within_a_key_range_and_not_across(
    production_stack: Devstack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim is what makes (or spares) a conflict: plain inserts into one table never conflict."""
    assert {key_range(f"M{i:07d}") for i in range(1000)} == set(range(CLAIM_RANGES))
    same, same_range, other_range = _members_in_ranges()
    lake = new_production_lake(production_stack, monkeypatch)
    first, second = _lake_with_schema(lake), connect_lake(lake.catalog, lake.data_path)
    try:
        assert ranged_claims(first)  # a Postgres catalog
        _race(first, second, same, other_range)  # disjoint ranges: both commit
        with pytest.raises(duckdb.Error) as conflict:
            _race(first, second, same, same_range)
        assert is_retryable_conflict(conflict.value)
        rows = first.execute("SELECT count(*) FROM meta.replay_ranges").fetchone()[0]
        assert rows == 3
    finally:
        first.close()
        second.close()


def test_only_a_commit_conflict_is_retried(
    production_stack: Devstack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real DuckLake conflict (another writer claims the same range mid-transaction) is re-run once;
    other errors are not."""
    lake = new_production_lake(production_stack, monkeypatch)
    first, second = _lake_with_schema(lake), connect_lake(lake.catalog, lake.data_path)
    calls = []

    def conflicting() -> str:
        calls.append(1)
        claim_for_events(first, {"usage": ["M0000001"]}, datetime.now(UTC))
        if len(calls) == 1:  # the other writer commits in between, once
            in_transaction(
                second, lambda: claim_for_events(second, {"usage": ["M0000001"]}, datetime.now(UTC))
            )
        return "committed"

    try:
        assert in_transaction(first, conflicting, sleep=lambda _: None) == "committed"
        assert len(calls) == 2
        with pytest.raises(duckdb.CatalogException) as other:
            in_transaction(first, lambda: first.execute("SELECT * FROM no_such_table"), sleep=lambda _: None)
        assert not is_retryable_conflict(other.value)
    finally:
        first.close()
        second.close()


def test_sensor_requests_one_run_per_shard_group_and_the_runs_land_side_by_side(
    production_stack: Devstack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dagster's side: the sensor asks for one run per group with news (tagged by group, the group in the
    run config), the runs land concurrently on the Postgres catalog, and the next tick finds nothing."""
    from dagster import DagsterInstance, SensorResult, build_sensor_context, materialize

    from cdr_platform.defs.kinesis.assets import raw_usage_events
    from cdr_platform.defs.kinesis.sensors import kinesis_usage_sensor
    from cdr_platform.defs.resources import KinesisResource, LakeResource

    lake = new_production_lake(production_stack, monkeypatch)
    _lake_with_schema(lake).close()
    endpoint = production_stack.config.kinesis_endpoint_url
    client = kinesis_client("us-east-1", endpoint)
    stream = new_stream(client, shards=4)
    events = usage_events(400, members=40, prefix="dagster")
    put_events(client, stream, events)
    resources = {
        "kinesis": KinesisResource(
            region="us-east-1", endpoint_url=endpoint, usage_stream=stream, shard_groups=2
        ),
        "lake": LakeResource(catalog=lake.catalog, data_path=lake.data_path),
    }

    def tick() -> SensorResult:
        with DagsterInstance.ephemeral() as instance:
            result = kinesis_usage_sensor(build_sensor_context(instance=instance, resources=resources))
        assert isinstance(result, SensorResult)
        return result

    requests = tick().run_requests or []
    assert sorted(r.tags["cdr/landing"] for r in requests) == ["kinesis/0", "kinesis/1"]
    assert [len(r.tags["cdr/shards"].split(",")) for r in requests] == [2, 2]

    def run(request: Any) -> int:
        result = materialize([raw_usage_events], resources=resources, run_config=request.run_config)
        assert result.success
        return result.get_asset_materialization_events()[0].materialization.metadata["landed"].value

    with ThreadPoolExecutor(2) as pool:
        landed = list(pool.map(run, requests))
    assert all(landed) and sum(landed) == 400
    assert _counts(lake) == (400, 400)
    assert not tick().run_requests
