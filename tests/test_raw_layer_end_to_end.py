"""The whole raw layer against the simulator's ground truth, with every relay fault switched on.

simulate -> EventStoreDB -> relay (drops, duplicates, reordering, malformed records) -> Kinesis ->
landing (Kinesis and EventStoreDB paths) -> reconciliation: the raw layer ends up holding exactly the
events the simulator produced, each once, and the dead letter exactly the malformed records.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from esdbclient import EventStoreDBClient

from cdr_platform.events import MEMBER_EVENT_TYPES
from cdr_platform.lake.eventstore_landing import land_eventstore
from cdr_platform.lake.kinesis_landing import land_kinesis_stream
from cdr_platform.lake.reconciliation import reconcile_usage_events
from cdr_platform.simulator.faults import FaultConfig
from cdr_platform.simulator.ground_truth import GroundTruthWriter
from cdr_platform.simulator.model import OperatorConfig, build_operator
from cdr_platform.simulator.producers import EventStoreProducer
from cdr_platform.simulator.simulation import Simulation
from cdr_platform.sources.kinesis_client import kinesis_client
from cdr_platform.sources.relay import Relay, RelayConfig
from tests.kinesis_helpers import new_stream

pytestmark = [pytest.mark.integration, pytest.mark.slow]
START = datetime(2025, 3, 3, tzinfo=UTC)
FAULTS = FaultConfig(seed=7, drop_rate=0.01, duplicate_rate=0.02, reorder_rate=0.05, malformed_rate=0.005)


def _ids(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [str(r[0]) for r in con.execute(f"SELECT event_id FROM {table}").fetchall()]


def test_raw_layer_equals_ground_truth_after_faults_and_repair(
    fresh_eventstore_uri: str, kinesis_endpoint: str, lake: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    operator = build_operator(OperatorConfig(seed=7, members=150, churn_share=0.1), START, 2)
    producer = EventStoreProducer(EventStoreDBClient(fresh_eventstore_uri), workers=8)
    try:
        with GroundTruthWriter(tmp_path / "truth") as truth:
            Simulation(operator, producer, FaultConfig(seed=7, late_rate=0.02), truth).run_backfill()
    finally:
        producer.close()
    with (tmp_path / "truth" / "events.csv").open() as handle:
        produced = list(csv.DictReader(handle))
    usage_truth = {r["event_id"] for r in produced if r["event_type"] not in MEMBER_EVENT_TYPES}
    member_truth = {r["event_id"] for r in produced if r["event_type"] in MEMBER_EVENT_TYPES}

    kinesis = kinesis_client("us-east-1", kinesis_endpoint)
    stream = new_stream(kinesis, shards=2)
    esdb = EventStoreDBClient(fresh_eventstore_uri)
    relay_dir = tmp_path / "relay"
    Relay(esdb, kinesis, RelayConfig(stream, relay_dir / "checkpoint.json", faults=FAULTS)).run(
        until_caught_up=True
    )
    faults = [json.loads(line) for line in (relay_dir / "relay_faults.jsonl").read_text().splitlines()]
    dropped = {f["event_id"] for f in faults if f["fault"] == "drop"}
    malformed = [f for f in faults if f["fault"] == "malformed"]
    assert dropped and malformed and any(f["fault"] == "duplicate" for f in faults)

    landed = land_kinesis_stream(lake, kinesis, stream)
    members = land_eventstore(lake, esdb, "members", MEMBER_EVENT_TYPES)
    usage_ids = _ids(lake, "raw.usage_events")
    assert len(usage_ids) == len(set(usage_ids))  # duplicates and redeliveries landed once
    assert set(usage_ids) == usage_truth - dropped  # everything that reached Kinesis, nothing else
    assert landed.dead_lettered == len(malformed)
    assert sorted(_ids(lake, "raw.member_events")) == sorted(member_truth) and members.caught_up

    report = reconcile_usage_events(lake, esdb, settled_before=datetime.now(UTC) + timedelta(minutes=1))
    assert set(report.missing_event_ids) == dropped and report.repaired == len(dropped)
    assert report.ok and not report.surplus_event_ids
    usage_ids = _ids(lake, "raw.usage_events")
    assert sorted(usage_ids) == sorted(usage_truth)  # repaired: exactly the ground truth, once each
    esdb.close()
