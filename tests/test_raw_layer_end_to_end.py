"""The whole platform against the simulator's ground truth, with every relay fault switched on.

simulate -> EventStoreDB -> relay (drops, duplicates, reordering, malformed records) -> Kinesis ->
landing (Kinesis and EventStoreDB paths) -> reconciliation -> dbt: the raw layer ends up holding
exactly the events the simulator produced, each once, the dead letter exactly the malformed records,
and the marts the simulator's calls and members. It runs on both profiles: the embedded lake (SQLite
catalog, local files) and the production-shaped one (PostgreSQL catalog, S3 data path).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from esdbclient import EventStoreDBClient

from cdr_platform.defs.transform.project import dbt_cli, dbt_project
from cdr_platform.events import MEMBER_EVENT_TYPES
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.eventstore_landing import land_eventstore
from cdr_platform.lake.kinesis_landing import land_kinesis_stream
from cdr_platform.lake.reconciliation import reconcile_usage_events
from cdr_platform.lake.schema import ensure_schema
from cdr_platform.simulator.faults import FaultConfig
from cdr_platform.simulator.ground_truth import GroundTruthWriter
from cdr_platform.simulator.model import OperatorConfig, build_operator
from cdr_platform.simulator.producers import EventStoreProducer
from cdr_platform.simulator.simulation import Simulation
from cdr_platform.sources.kinesis_client import kinesis_client
from cdr_platform.sources.relay import Relay, RelayConfig
from tests.kinesis_helpers import new_stream
from tests.production_profile import new_production_lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MART_MODELS = "+fct_calls +dim_members"
START = datetime(2025, 3, 3, tzinfo=UTC)
FAULTS = FaultConfig(seed=7, drop_rate=0.01, duplicate_rate=0.02, reorder_rate=0.05, malformed_rate=0.005)


def _ids(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [str(r[0]) for r in con.execute(f"SELECT event_id FROM {table}").fetchall()]


@pytest.fixture(params=["embedded", "production"])
def profile_lake(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The profile's lake, with ``CDR_LAKE_*`` (and on production the AWS variables) set for dbt."""
    monkeypatch.delenv("CDR_CONFIG_FILE", raising=False)
    if request.param == "production":
        production = new_production_lake(request.getfixturevalue("production_stack"), monkeypatch)
        catalog, data_path = production.catalog, production.data_path
    else:
        catalog, data_path = f"sqlite:{tmp_path / 'catalog.sqlite'}", f"{tmp_path / 'files'}/"
        monkeypatch.setenv("CDR_LAKE_CATALOG", catalog)
        monkeypatch.setenv("CDR_LAKE_DATA_PATH", data_path)
    con = connect_lake(catalog, data_path)
    ensure_schema(con)
    yield con
    con.close()


def _call_outcome(answered: bool, dropped: bool, cause: int | None) -> tuple[bool, bool, int | None]:
    return answered, dropped, None if answered else cause


def _check_marts_against_truth(lake: duckdb.DuckDBPyConnection, truth: Path, target: Path) -> None:
    """dbt builds the call and member marts; they hold the simulator's calls and members."""
    invocation = dbt_cli(dbt_project()).cli(
        ["build", "--select", MART_MODELS, "--indirect-selection", "cautious"],
        target_path=target,
        raise_on_error=False,
    )
    assert invocation.wait().is_successful(), f"dbt build failed: see {target}"
    with (truth / "calls.csv").open() as handle:
        expected = {
            (r["call_id"], r["member_id"]): _call_outcome(
                r["outcome"] in ("completed", "dropped"),
                r["outcome"] == "dropped",
                int(r["cause_code"]) if r["cause_code"] else None,
            )
            for r in csv.DictReader(handle)
        }
    rows = lake.execute(
        "SELECT call_id, member_id, is_answered, is_dropped, failure_cause_code FROM marts.fct_calls"
    ).fetchall()
    built = {(c, m): _call_outcome(a, d, None if f is None else int(f)) for c, m, a, d, f in rows}
    assert len(rows) == len(built) and built == expected
    with (truth / "members.csv").open() as handle:
        members = {r["member_id"] for r in csv.DictReader(handle)}
    assert {r[0] for r in lake.execute("SELECT member_id FROM marts.dim_members").fetchall()} == members


def test_platform_equals_ground_truth_after_faults_and_repair(
    fresh_eventstore_uri: str,
    kinesis_endpoint: str,
    profile_lake: duckdb.DuckDBPyConnection,
    tmp_path: Path,
) -> None:
    lake = profile_lake
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
    _check_marts_against_truth(lake, tmp_path / "truth", tmp_path / "dbt-target")
