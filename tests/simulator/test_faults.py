"""Relay faults appear at their configured rates, are deterministic and are all in the fault log."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from cdr_platform.events import Rejection, RejectionReason, parse_event
from cdr_platform.simulator.builders import produce
from cdr_platform.simulator.faults import FaultConfig, apply_relay_faults, malformed_record, read_fault_log
from cdr_platform.simulator.model import OperatorConfig, build_operator
from cdr_platform.simulator.traffic import operator_day
from cdr_platform.sources.relay import SourceEvent
from tests.simulator.conftest import START

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def batch() -> list[SourceEvent]:
    operator = build_operator(OperatorConfig(members=400), START, 1)
    events = produce(operator_day(operator, 0))
    return [SourceEvent(e.event_id, e.event_type, e.member_id, e.data, i) for i, e in enumerate(events)]


def test_each_fault_appears_at_its_rate_and_is_logged(batch: list[SourceEvent]) -> None:
    faults = FaultConfig(seed=9, drop_rate=0.02, duplicate_rate=0.03, reorder_rate=0.04, malformed_rate=0.01)
    records, entries = apply_relay_faults(batch, faults)
    counts = Counter(entry.fault for entry in entries)
    n = len(batch)
    for fault, rate in (("drop", 0.02), ("duplicate", 0.03), ("reorder", 0.04), ("malformed", 0.01)):
        eligible = n if fault == "drop" else n - counts["drop"]  # a dropped event gets no other fault
        tolerance = 4 * math.sqrt(eligible * rate * (1 - rate))
        assert abs(counts[fault] - eligible * rate) <= tolerance, fault
    # what is published is exactly: everything not dropped, plus duplicates, plus malformed records
    assert len(records) == n - counts["drop"] + counts["duplicate"] + counts["malformed"]
    published = Counter(r.data for r in records)
    by_id = {e.event_id: e for e in batch}
    for entry in entries:
        source = by_id[entry.event_id]  # type: ignore[index]
        expected = {"drop": 0, "duplicate": 2}.get(entry.fault)
        if expected is not None:
            assert published[source.data] == expected
    kinds = Counter(entry.detail["kind"] for entry in entries if entry.fault == "malformed")
    assert set(kinds) == {"not_json", "missing_field", "unknown_event_type", "oversize"}


def test_faults_are_deterministic_per_event_regardless_of_batching(batch: list[SourceEvent]) -> None:
    faults = FaultConfig(seed=1, drop_rate=0.05, duplicate_rate=0.05, malformed_rate=0.05)
    _, whole = apply_relay_faults(batch, faults)
    halves = [e for part in (batch[:777], batch[777:]) for e in apply_relay_faults(part, faults)[1]]
    assert {(e.fault, e.event_id) for e in whole} == {(e.fault, e.event_id) for e in halves}
    _, other_seed = apply_relay_faults(batch, FaultConfig(seed=2, drop_rate=0.05))
    assert {e.event_id for e in whole if e.fault == "drop"} != {e.event_id for e in other_seed}


def test_reordered_events_move_later_within_the_window(batch: list[SourceEvent]) -> None:
    sample = batch[:2000]
    records, entries = apply_relay_faults(sample, FaultConfig(seed=3, reorder_rate=0.05, reorder_window=10))
    position = {r.data: i for i, r in enumerate(records)}
    shifts = {entry.event_id: int(entry.detail["shift"]) for entry in entries}  # type: ignore[call-overload]
    assert shifts and all(1 <= shift <= 10 for shift in shifts.values())
    for index, event in enumerate(sample):
        shift = shifts.get(event.event_id)
        if shift is None:
            continue
        overtaken = [e for e in sample[index + 1 : index + shift + 1] if e.event_id not in shifts]
        assert all(position[e.data] < position[event.data] for e in overtaken)
        following = [e for e in sample[index + shift + 1 : index + shift + 2] if e.event_id not in shifts]
        assert all(position[e.data] > position[event.data] for e in following)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("not_json", RejectionReason.NOT_JSON),
        ("missing_field", RejectionReason.MISSING_FIELD),
        ("unknown_event_type", RejectionReason.UNKNOWN_EVENT_TYPE),
        ("oversize", RejectionReason.OVERSIZE),
    ],
)
def test_malformed_records_are_rejected_for_their_reason(
    batch: list[SourceEvent], kind: str, reason: str
) -> None:
    for source in batch:
        bad = malformed_record(4, source.event_id, source.member_id, source.data)
        if bad.kind == kind:
            rejection = parse_event(bad.data)
            assert isinstance(rejection, Rejection) and rejection.reason == reason
            if kind == "oversize":
                assert len(bad.data) > 64 * 1024
            return
    pytest.fail(f"no {kind} record in the sample")


def test_fault_log_reader_drops_repeated_lines(tmp_path: Path, batch: list[SourceEvent]) -> None:
    _, entries = apply_relay_faults(batch[:500], FaultConfig(seed=5, drop_rate=0.1))
    log = tmp_path / "faults.jsonl"
    lines = [e.to_json() + "\n" for e in entries]
    log.write_text("".join(lines + lines[:3]))  # a restarted relay re-logs what it re-read
    assert read_fault_log(log) == entries
