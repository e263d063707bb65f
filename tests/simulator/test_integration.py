"""End to end against the real local endpoints: simulate into EventStoreDB, relay to Kinesis."""

from __future__ import annotations

import csv
import hashlib
import json
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from esdbclient import EventStoreDBClient

from cdr_platform.devstack.kinesis_local import local_kinesis_client
from cdr_platform.events import MEMBER_EVENT_TYPES, USAGE_EVENT_TYPES
from cdr_platform.events.framing import UserRecord
from cdr_platform.simulator.builders import produce
from cdr_platform.simulator.faults import FaultConfig, read_fault_log
from cdr_platform.simulator.ground_truth import GroundTruthWriter
from cdr_platform.simulator.model import OperatorConfig, build_operator
from cdr_platform.simulator.producers import EventStoreProducer
from cdr_platform.simulator.simulation import Simulation
from cdr_platform.simulator.traffic import operator_day
from cdr_platform.sources.kinesis_publisher import KinesisPublisher
from cdr_platform.sources.relay import (
    Relay,
    RelayConfig,
    RelayState,
    read_checkpoint,
    write_checkpoint,
)
from tests.kinesis_helpers import new_stream
from tests.simulator.conftest import START
from tests.simulator.kinesis_readback import read_user_records

pytestmark = pytest.mark.integration


def _simulate(
    uri: str, out: Path, seed: int, members: int = 120, late_rate: float = 0.0
) -> list[dict[str, str]]:
    operator = build_operator(OperatorConfig(seed=seed, members=members, churn_share=0.1), START, 1)
    producer = EventStoreProducer(EventStoreDBClient(uri), workers=8)
    try:
        with GroundTruthWriter(out) as truth:
            Simulation(operator, producer, FaultConfig(seed=seed, late_rate=late_rate), truth).run_backfill()
    finally:
        producer.close()
    with (out / "events.csv").open() as handle:
        return list(csv.DictReader(handle))


def _stored(client: EventStoreDBClient, seed: int) -> list[tuple[str, str, str]]:
    """(event_id, stream, type) of this seed's events in $all, in $all order."""
    pattern = [rf"(call|sms|data|balance|member)-S{seed}-.*"]
    return [
        (str(e.id), e.stream_name, e.type)
        for e in client.read_all(filter_include=pattern, filter_by_stream_name=True)
    ]


def _checkpoint_at_end_of_all(uri: str, checkpoint: Path) -> None:
    """Start the relay after everything already in $all (other tests' events)."""
    write_checkpoint(checkpoint, RelayState(EventStoreDBClient(uri).get_commit_position() or None))


def test_backfill_matches_ground_truth_and_a_rerun_adds_nothing(eventstore_uri: str, tmp_path: Path) -> None:
    seed = 1001
    truth = _simulate(eventstore_uri, tmp_path, seed, late_rate=0.05)
    client = EventStoreDBClient(eventstore_uri)
    stored = _stored(client, seed)
    assert Counter(stored) == Counter((r["event_id"], r["stream"], r["event_type"]) for r in truth)
    late = {r["correlation_id"] for r in truth if r["late_hours"]}
    assert late, "the late fault should have held some transactions back"
    # late transactions sit after events that happened hours later than them
    stored_order = {event_id: i for i, (event_id, _, _) in enumerate(stored)}
    by_id = {r["event_id"]: r for r in truth}
    some_late = next(r for r in truth if r["correlation_id"] in late)
    later_but_before = [
        r for r in truth if stored_order[r["event_id"]] < stored_order[some_late["event_id"]]
        and r["occurred_at"] > by_id[some_late["event_id"]]["occurred_at"]
    ]  # fmt: skip
    assert later_but_before

    again = _simulate(eventstore_uri, tmp_path / "again", seed, late_rate=0.05)
    assert again == truth
    assert Counter(_stored(client, seed)) == Counter(stored)  # idempotent: no duplicates


def _relay_command(uri: str, endpoint: str, stream: str, checkpoint: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "cdr_platform.cli", "relay", "--quiet", "--eventstore-uri", uri,
        "--kinesis-endpoint-url", endpoint, "--stream", stream, "--checkpoint", checkpoint, *extra,
    ]  # fmt: skip


def test_relay_is_at_least_once_across_a_kill(
    eventstore_uri: str, kinesis_endpoint: str, tmp_path: Path
) -> None:
    seed = 1002
    checkpoint = tmp_path / "relay" / "checkpoint.json"
    _checkpoint_at_end_of_all(eventstore_uri, checkpoint)
    truth = _simulate(eventstore_uri, tmp_path / "truth", seed)
    kinesis = local_kinesis_client(kinesis_endpoint)
    stream = new_stream(kinesis, 2)
    config = RelayConfig(stream, checkpoint, batch_events=500)

    # 1. a crash right after Kinesis acknowledged a batch, before its checkpoint was written
    relay = Relay(EventStoreDBClient(eventstore_uri), kinesis, config)
    relay.run(until_caught_up=True, stop_after_events=1000)
    crashed_at = read_checkpoint(checkpoint)
    assert 0 < crashed_at.events_published < 1000

    # 2. a real process, killed with SIGKILL once it has moved the checkpoint on
    command = _relay_command(
        eventstore_uri, kinesis_endpoint, stream, str(checkpoint), "--batch-events", "300"
    )
    process = subprocess.Popen(command)
    deadline = time.monotonic() + 60
    while (
        read_checkpoint(checkpoint) == crashed_at and process.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert read_checkpoint(checkpoint).events_published > crashed_at.events_published

    # 3. restart to the end
    result = Relay(EventStoreDBClient(eventstore_uri), kinesis, config).run(until_caught_up=True)
    assert result.caught_up

    records = read_user_records(kinesis, stream)
    on_kinesis = [json.loads(r.data) for _, r in records]
    expected_usage = [r for r in truth if r["event_type"] in USAGE_EVENT_TYPES]
    ids = Counter(doc["event_id"] for doc in on_kinesis)
    assert set(ids) == {r["event_id"] for r in expected_usage}  # every usage event, no member event
    assert not any(doc["event_type"] in MEMBER_EVENT_TYPES for doc in on_kinesis)
    assert sum(ids.values()) > len(ids)  # the re-read batches went out twice: at-least-once
    assert all(r.partition_key == doc["member_id"] for (_, r), doc in zip(records, on_kinesis, strict=True))
    # per member, first occurrences keep EventStoreDB's order
    stored_order = {
        event_id: i for i, (event_id, _, _) in enumerate(_stored(EventStoreDBClient(eventstore_uri), seed))
    }
    first_seen: dict[str, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for doc in on_kinesis:
        if doc["event_id"] not in seen:
            seen.add(doc["event_id"])
            first_seen[doc["member_id"]].append(stored_order[doc["event_id"]])
    assert all(order == sorted(order) for order in first_seen.values())


def test_relay_faults_are_on_kinesis_at_their_rates_and_in_the_log(
    eventstore_uri: str, kinesis_endpoint: str, tmp_path: Path
) -> None:
    seed = 1003
    checkpoint = tmp_path / "relay" / "checkpoint.json"
    _checkpoint_at_end_of_all(eventstore_uri, checkpoint)
    truth = _simulate(eventstore_uri, tmp_path / "truth", seed)
    kinesis = local_kinesis_client(kinesis_endpoint)
    stream = new_stream(kinesis, 2)
    faults = FaultConfig(
        seed=7,
        drop_rate=0.03,
        duplicate_rate=0.03,
        reorder_rate=0.03,
        malformed_rate=0.02,
        reshard_after_events=1500,
    )
    config = RelayConfig(stream, checkpoint, batch_events=1000, faults=faults)
    Relay(EventStoreDBClient(eventstore_uri), kinesis, config).run(until_caught_up=True)

    log = read_fault_log(config.resolved_fault_log)
    assert [e.fault for e in log].count("reshard") == 1
    assert (
        len(
            [
                s
                for s in kinesis.list_shards(StreamName=stream)["Shards"]
                if "EndingSequenceNumber" not in s["SequenceNumberRange"]
            ]
        )
        == 4
    )
    records = read_user_records(kinesis, stream)
    usage_ids = {r["event_id"] for r in truth if r["event_type"] in USAGE_EVENT_TYPES}
    mine = [e for e in log if e.event_id in usage_ids]
    by_fault: dict[str, set[str]] = defaultdict(set)
    for entry in mine:
        by_fault[entry.fault].add(entry.event_id)  # type: ignore[arg-type]
    n = len(usage_ids)
    for fault in ("drop", "duplicate", "reorder", "malformed"):
        rate = getattr(faults, f"{fault}_rate")
        assert abs(len(by_fault[fault]) - n * rate) <= 4 * (n * rate) ** 0.5 + 2, fault

    published: Counter[str] = Counter()
    malformed_hashes = set()
    for _, record in records:
        malformed_hashes.add(hashlib.sha256(record.data).hexdigest())
        try:
            published[json.loads(record.data)["event_id"]] += 1
        except (ValueError, KeyError):
            continue
    mine_published = {event_id: c for event_id, c in published.items() if event_id in usage_ids}
    assert set(mine_published) == usage_ids - by_fault["drop"]  # counts agree apart from dropped events
    assert {e for e, c in mine_published.items() if c == 2} == by_fault["duplicate"]
    logged_malformed = {str(e.detail["sha256"]) for e in mine if e.fault == "malformed"}
    assert logged_malformed <= malformed_hashes


class _ThrottlingKinesis:
    """Wraps the real kinesis-local client; refuses every other put_records entry as throttled on the
    first few calls (kinesis-local never throttles, so this fault path needs a wrapper)."""

    def __init__(self, client: object, refusals: int) -> None:
        self.client = client
        self.refusals = refusals

    def __getattr__(self, name: str) -> object:
        return getattr(self.client, name)

    def put_records(self, StreamName: str, Records: list[dict[str, object]]) -> dict[str, object]:
        if self.refusals <= 0:
            return self.client.put_records(StreamName=StreamName, Records=Records)  # type: ignore[attr-defined]
        self.refusals -= 1
        accepted = Records[1::2]
        response = (
            self.client.put_records(StreamName=StreamName, Records=accepted) if accepted else {"Records": []}
        )  # type: ignore[attr-defined]
        results = iter(response["Records"])  # type: ignore[index]
        throttled = {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"}
        return {
            "FailedRecordCount": len(Records) - len(accepted),
            "Records": [throttled if i % 2 == 0 else next(results) for i in range(len(Records))],
        }


def test_publisher_retries_throttled_entries_without_breaking_member_order(kinesis_endpoint: str) -> None:
    kinesis = local_kinesis_client(kinesis_endpoint)
    stream = new_stream(kinesis, 4)
    operator = build_operator(OperatorConfig(seed=1004, members=60), START, 1)
    events = [e for e in produce(operator_day(operator, 0)) if e.event_type in USAGE_EVENT_TYPES]
    publisher = KinesisPublisher(
        _ThrottlingKinesis(kinesis, refusals=6), stream, aggregate_bytes=16 * 1024, sleep=lambda _: None
    )
    publisher.put([UserRecord(e.member_id, e.data) for e in events])
    by_member: dict[str, list[str]] = defaultdict(list)
    for _, record in read_user_records(kinesis, stream):
        by_member[record.partition_key].append(json.loads(record.data)["event_id"])
    expected: dict[str, list[str]] = defaultdict(list)
    for event in events:
        expected[event.member_id].append(event.event_id)
    assert by_member == expected  # each event once, in order per member
