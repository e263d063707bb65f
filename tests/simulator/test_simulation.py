"""The schedule: time order, expected versions per stream, late transactions, ground-truth files."""

from __future__ import annotations

import csv
import json
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cdr_platform.simulator.faults import FaultConfig
from cdr_platform.simulator.ground_truth import GroundTruthWriter
from cdr_platform.simulator.model import OperatorConfig, build_operator
from cdr_platform.simulator.producers import split_for_append
from cdr_platform.simulator.simulation import Simulation, default_start, release_schedule
from tests.simulator.conftest import START, RecordingSink

pytestmark = pytest.mark.unit


def test_chunks_are_in_time_order_and_late_transactions_arrive_hours_later() -> None:
    operator = build_operator(OperatorConfig(members=300), START, 2)
    faults = FaultConfig(seed=42, late_rate=0.05, late_min_hours=2, late_max_hours=4)
    previous = operator.start
    late = on_time = 0
    for chunk in release_schedule(operator, faults, timedelta(hours=1)):
        assert chunk.end > previous
        previous = chunk.end
        for release in chunk.releases:
            assert chunk.end - timedelta(hours=1) <= release.release_at < chunk.end
            if release.late_hours is None:
                on_time += 1
            else:
                late += 1
                assert 2 <= release.late_hours <= 4
                assert release.release_at >= release.record.completed_at + timedelta(hours=2)
    assert late / (late + on_time) == pytest.approx(0.05 * 0.9, abs=0.015)  # usage transactions only


def test_expected_versions_count_what_each_stream_already_holds(tmp_path: Path) -> None:
    operator = build_operator(OperatorConfig(members=200, churn_share=0.2, plan_change_share=0.2), START, 2)
    sink = RecordingSink()
    with GroundTruthWriter(tmp_path) as truth:
        result = Simulation(operator, sink, ground_truth=truth).run_backfill()
    held: Counter[str] = Counter()
    for append in sink.appends:
        assert append.expected_count == held[append.stream]
        held[append.stream] += len(append.events)
        times = [e.occurred_at for e in append.events]
        if append.stream.startswith("member-"):
            assert times == sorted(times)
    with (tmp_path / "events.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    appended = [e for a in sink.appends for e in a.events]
    assert [r["event_id"] for r in rows] == [e.event_id for e in appended]
    assert len(rows) == result.events == json.loads((tmp_path / "run.json").read_text())["events"]
    assert [r["stream"] for r in rows] == [e.stream for e in appended]
    with (tmp_path / "members.csv").open() as handle:
        members = list(csv.DictReader(handle))
    assert sum(int(m["churned"]) for m in members) == 40
    deactivations = {r["member_id"] for r in rows if r["event_type"] == "member_deactivated"}
    assert deactivations == {m["member_id"] for m in members if m["churned"] == "1"}


def test_append_slices_stay_under_the_limit() -> None:
    operator = build_operator(OperatorConfig(members=50), START, 1)
    sink = RecordingSink()
    Simulation(operator, sink).run_backfill()
    events = [e for a in sink.appends for e in a.events]
    slices = split_for_append(events, max_bytes=64 * 1024)
    assert [e for s in slices for e in s] == events
    assert all(sum(len(e.data) + 264 for e in s) <= 64 * 1024 for s in slices)


def test_live_mode_paces_on_the_clock_and_stops_at_the_end() -> None:
    operator = build_operator(OperatorConfig(members=20), START, 1 / 24)
    clock = [0.0]

    def now() -> float:
        clock[0] += 60.0  # each look at the clock moves a minute on
        return clock[0]

    sink = RecordingSink()
    result = Simulation(operator, sink).run_live(speed=600.0, now=now)
    assert result.clock is not None and result.clock >= operator.end
    assert result.events == sum(len(a.events) for a in sink.appends) > 0


def test_default_start_ends_the_period_at_midnight() -> None:
    start = default_start(2, today=START + timedelta(hours=15))
    assert start == START - timedelta(days=2)


def _fake_clock() -> Callable[[], float]:
    ticks = [0.0]

    def now() -> float:
        ticks[0] += 60.0  # each look at the clock moves a minute on
        return ticks[0]

    return now


def test_a_resumed_live_run_appends_exactly_what_an_uninterrupted_one_does() -> None:
    """Stopped half-way, then resumed from its last acknowledged clock: nothing twice, nothing lost,
    and every expected version is what the stream holds (no collision with what the first run wrote)."""
    config = OperatorConfig(members=40, churn_share=0.2, plan_change_share=0.3)
    operator = build_operator(config, START, 2)
    live_from = START + timedelta(days=1, hours=5)
    faults = FaultConfig(seed=42, late_rate=0.05, late_min_hours=1, late_max_hours=3)
    whole = RecordingSink()
    Simulation(operator, whole, faults).run_live(speed=600.0, now=_fake_clock(), live_from=live_from)

    first, stop, reached = RecordingSink(), threading.Event(), []

    def acknowledged(clock: datetime) -> None:
        reached.append(clock)
        if clock >= live_from + timedelta(hours=3):
            stop.set()

    interrupted = Simulation(operator, first, faults, on_appended=acknowledged)
    interrupted.run_live(speed=600.0, stop=stop, now=_fake_clock(), live_from=live_from)
    assert reached == sorted(reached) and live_from < reached[-1] < operator.end
    second = RecordingSink()
    resumed = Simulation(build_operator(config, START, 2), second, faults, resume_from=reached[-1])
    resumed.run_live(speed=600.0, now=_fake_clock(), live_from=live_from)

    appended = [e.event_id for a in first.appends + second.appends for e in a.events]
    assert len(appended) == len(set(appended))
    assert sorted(appended) == sorted(e.event_id for a in whole.appends for e in a.events)
    held: Counter[str] = Counter()
    for append in first.appends + second.appends:
        assert append.expected_count == held[append.stream], append.stream
        held[append.stream] += len(append.events)
    assert any(a.stream.startswith("member-") and a.expected_count > 0 for a in second.appends)


def test_history_before_live_from_is_appended_in_hour_chunks_then_live_ones() -> None:
    operator = build_operator(OperatorConfig(members=10), START, 1)
    live_from = START + timedelta(hours=5, minutes=30)
    ends = [
        chunk.end
        for chunk in release_schedule(operator, FaultConfig(seed=42), timedelta(minutes=1), live_from)
    ]
    assert ends[:6] == [START + timedelta(hours=h) for h in range(1, 6)] + [live_from]
    assert ends[6] == live_from + timedelta(minutes=1)
