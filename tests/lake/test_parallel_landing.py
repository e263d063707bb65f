"""Parallel landing on a Postgres catalog: concurrent shard workers, conflicts retried, each event once."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import duckdb
import pytest

from cdr_platform.devstack.stack import Devstack
from cdr_platform.lake.commit_retry import is_commit_conflict, retry_commit_conflicts
from cdr_platform.lake.connection import connect_lake, in_transaction
from cdr_platform.lake.kinesis_landing import land_kinesis_stream
from cdr_platform.lake.landing import claim_raw_writer, load_shard_checkpoints
from cdr_platform.lake.schema import ensure_schema
from cdr_platform.settings import PROJECT_ROOT
from cdr_platform.sources.kinesis_client import kinesis_client
from tests.kinesis_helpers import new_stream, put_events, usage_events
from tests.production_profile import ProductionLake, new_production_lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# One worker process: lands events [first, last) in chunks of 25, every chunk its own transaction.
WORKER = textwrap.dedent(
    """
    import json, sys
    from cdr_platform.events import encode_event
    from cdr_platform.lake.commit_retry import land_with_retry
    from cdr_platform.lake.connection import connect_lake, in_transaction
    from cdr_platform.lake.landing import LandingBatch, SourceRecord
    from tests.kinesis_helpers import usage_events

    catalog, data_path, name, first, last = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:6])
    events = usage_events(400, prefix="same")
    con = connect_lake(catalog, data_path)
    landed = duplicates = 0
    for start in range(first, last, 25):
        records = [SourceRecord(encode_event(events[i]), f"{name}/{i}") for i in range(start, start + 25)]
        result = land_with_retry(con, LandingBatch(name, records))
        landed, duplicates = landed + result.landed, duplicates + result.duplicates
    print(json.dumps({"landed": landed, "duplicates": duplicates}))
    """
)


def _lake_with_schema(lake: ProductionLake) -> duckdb.DuckDBPyConnection:
    con = connect_lake(lake.catalog, lake.data_path)
    ensure_schema(con)
    return con


def test_concurrent_workers_on_overlapping_redeliveries_land_each_event_once(
    production_stack: Devstack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three processes commit at once; every event is delivered to two or three of them."""
    lake = new_production_lake(production_stack, monkeypatch)
    con = _lake_with_schema(lake)
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
    try:
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM raw.usage_events"
        ).fetchone()
    finally:
        con.close()
    assert total == distinct == 400
    assert sum(r["landed"] for r in reports.values()) == 400
    assert sum(r["duplicates"] for r in reports.values()) == 300 + 300 + 400 - 400


def test_shard_groups_land_concurrently_and_redelivered_events_once(
    production_stack: Devstack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers each own half of a 4-shard stream; every event was put twice (a relay retry)."""
    lake = new_production_lake(production_stack, monkeypatch)
    _lake_with_schema(lake).close()
    client = kinesis_client("us-east-1", production_stack.config.kinesis_endpoint_url)
    stream = new_stream(client, shards=4)
    events = usage_events(600, members=40, prefix="groups")
    put_events(client, stream, events)
    put_events(client, stream, events)  # the redelivery
    shards = sorted(s["ShardId"] for s in client.list_shards(StreamName=stream)["Shards"])
    groups = [shards[:2], shards[2:]]

    def worker(group: list[str]) -> int:
        con = connect_lake(lake.catalog, lake.data_path)
        try:
            own = kinesis_client("us-east-1", production_stack.config.kinesis_endpoint_url)
            return land_kinesis_stream(con, own, stream, records_per_page=50, shard_ids=group).received
        finally:
            con.close()

    with ThreadPoolExecutor(len(groups)) as pool:
        received = list(pool.map(worker, groups))
    assert all(received) and sum(received) == 1200  # both groups had records, every copy was read
    con = connect_lake(lake.catalog, lake.data_path, read_only=True)
    try:
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM raw.usage_events"
        ).fetchone()
        assert set(load_shard_checkpoints(con, stream)) == set(shards)
    finally:
        con.close()
    assert total == distinct == 600


def test_only_a_commit_conflict_is_retried(
    production_stack: Devstack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real DuckLake conflict (two connections claiming the writer row) is re-run; other errors are not."""
    lake = new_production_lake(production_stack, monkeypatch)
    first, second = connect_lake(lake.catalog, lake.data_path), connect_lake(lake.catalog, lake.data_path)
    ensure_schema(first)
    in_transaction(first, lambda: claim_raw_writer(first, datetime.now(UTC)))
    calls = []

    def conflicting() -> str:
        calls.append(1)
        first.execute("BEGIN")
        claim_raw_writer(first, datetime.now(UTC))
        if len(calls) == 1:  # the other writer commits in between, once
            in_transaction(second, lambda: claim_raw_writer(second, datetime.now(UTC)))
        try:
            first.execute("COMMIT")
        except duckdb.Error:
            with contextlib.suppress(duckdb.Error):  # a failed COMMIT may have ended the transaction
                first.execute("ROLLBACK")
            raise
        return "committed"

    try:
        assert retry_commit_conflicts(conflicting, sleep=lambda _: None) == "committed"
        assert len(calls) == 2
        with pytest.raises(duckdb.CatalogException) as other:
            retry_commit_conflicts(lambda: first.execute("SELECT * FROM no_such_table"), sleep=lambda _: None)
        assert not is_commit_conflict(other.value)
    finally:
        first.close()
        second.close()
