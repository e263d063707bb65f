"""The executives' as-of time and the live view, on the demo's case.

Calls stop at 18:00 today, but a data session ended at 18:50: with "now" = the latest event time the
view compared today up to 18:00 (nothing happened after) with last week up to 18:50 (calls until
then). The landed watermark (latest opening event per Kinesis shard, minus the in-flight allowance,
the minimum over shards) cuts both days at the same time of day, so the comparison is like for like.
Then events land without a dbt run: the next query of the view counts them and the as-of moves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from cdr_platform.defs.transform.project import dbt_cli, dbt_project
from cdr_platform.events import Event, encode_event
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.landing import LandingBatch, ShardCheckpoint, SourceRecord, land_batch
from cdr_platform.lake.schema import ensure_schema
from cdr_platform.settings import Settings, load_settings
from tests.transform.dataset import CELLS, Member, _data, _event, _leg, _rating, _sms

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TODAY = datetime(2025, 3, 15, tzinfo=UTC)
LAST_WEEK = TODAY - timedelta(days=7)
ALLOWANCE = timedelta(seconds=60)  # var in_flight_allowance_seconds
SHARDS = ("shardId-000000000000", "shardId-000000000001")
KPIS = ["active_members", "calls", "dropped_call_rate", "revenue"]


def _member(i: int) -> Member:
    return Member(
        f"M{i:06d}", f"4477009{i:05d}", f"23415{i:010d}", f"35693803{i:07d}", "PAYG-10", "prepaid", TODAY
    )


def _call(member: Member, call_id: str, at: datetime, dropped: bool = False) -> list[Event]:
    leg = _leg(member, CELLS[0], "447700900123")
    answered = at + timedelta(seconds=10)
    released = answered + timedelta(seconds=60)
    kind = "call_dropped" if dropped else "call_ended"
    release = _event(kind, call_id, released, member, call_id, "msc", {**leg, "call_duration_s": 60.0})
    return [
        _event("call_attempted", call_id, at, member, call_id, "msc", leg),
        _event("call_answered", call_id, answered, member, call_id, "msc", leg),
        release,
        _rating(member, call_id, release, "voice", 60, "second", 60_000, released),
    ]


def _history() -> dict[str, list[Event]]:
    """Events per shard: calls stop at 18:00 today, a data session ends at 18:50."""
    m1, m2, m3 = _member(1), _member(2), _member(3)
    shard0 = [
        *_call(m1, "lw-1", LAST_WEEK + timedelta(hours=10)),
        *_call(m1, "lw-2", LAST_WEEK + timedelta(hours=17, minutes=30), dropped=True),
        *_call(m1, "lw-3", LAST_WEEK + timedelta(hours=18, minutes=20)),
        *_call(m1, "lw-4", LAST_WEEK + timedelta(hours=18, minutes=40), dropped=True),
        *_call(m1, "t-1", TODAY + timedelta(hours=10)),
        *_call(m1, "t-2", TODAY + timedelta(hours=11), dropped=True),
        *_call(m1, "t-3", TODAY + timedelta(hours=17, minutes=30)),
        *_call(m1, "t-4", TODAY + timedelta(hours=17, minutes=59)),
    ]
    shard1 = [
        *_sms(m2, "lw-s1", LAST_WEEK + timedelta(hours=12)),
        *_sms(m3, "lw-s2", LAST_WEEK + timedelta(hours=18, minutes=30)),
        *_sms(m2, "t-s1", TODAY + timedelta(hours=9)),
        *_sms(m3, "t-s2", TODAY + timedelta(hours=17, minutes=58, seconds=30)),
        *_data(__import__("random").Random(1), m2, "t-d1", TODAY + timedelta(hours=18, minutes=50)),
    ]
    return {SHARDS[0]: shard0, SHARDS[1]: shard1}


def _land(settings: Settings, by_shard: dict[str, list[Event]], first_sequence: int) -> None:
    con = connect_lake(settings.resolved_lake_catalog, settings.resolved_lake_data_path)
    try:
        ensure_schema(con)
        for shard, events in by_shard.items():
            records = [
                SourceRecord(encode_event(e), f"{shard}/{first_sequence + i}/0") for i, e in enumerate(events)
            ]
            last = str(first_sequence + len(events) - 1)
            land_batch(con, LandingBatch("kinesis", records, [ShardCheckpoint("usage", shard, last)]))
    finally:
        con.close()


def _expected(events: list[Event], as_of: datetime) -> dict[str, tuple[float, float]]:
    """(today, same time last week) over midnight..as_of of each day: the like-for-like reference."""

    def window(low: datetime, high: datetime) -> dict[str, float]:
        inside = [e for e in events if low <= e.occurred_at <= high]
        kinds = [e.event_type for e in inside]
        answered, dropped = kinds.count("call_answered"), kinds.count("call_dropped")
        activity = {"call_attempted", "sms_submitted", "data_session_ended", "topup_completed"}
        return {
            "active_members": len({e.member_id for e in inside if e.event_type in activity}),
            "calls": kinds.count("call_attempted"),
            "dropped_call_rate": dropped / answered if answered else float("nan"),
            "revenue": sum(e.payload.charge_micros for e in inside if e.event_type == "usage_rated") / 1e6,
        }

    today = window(TODAY, as_of)
    week = window(LAST_WEEK, as_of - timedelta(days=7))
    return {kpi: (today[kpi], week[kpi]) for kpi in KPIS}


@dataclass
class ExecLake:
    settings: Settings
    root: Path

    def query(self, sql: str) -> pd.DataFrame:
        con = connect_lake(
            self.settings.resolved_lake_catalog, self.settings.resolved_lake_data_path, read_only=True
        )
        try:
            return con.execute(sql).df()
        finally:
            con.close()

    def dbt_run(self, name: str) -> None:
        target = self.root / name
        reports = "+rpt_exec_kpis_intraday +rpt_exec_kpis_hourly +rpt_exec_source_watermarks"
        args = ["run", "--select", reports]
        invocation = dbt_cli(dbt_project()).cli(args, target_path=target, raise_on_error=False).wait()
        results = json.loads((target / "run_results.json").read_text())["results"]
        assert invocation.is_successful(), [r["message"] for r in results if r["status"] != "success"]


@pytest.fixture(scope="module")
def exec_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExecLake]:
    root = tmp_path_factory.mktemp("exec_lake")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CDR_LAKE_CATALOG", f"sqlite:{root / 'catalog.sqlite'}")
        env.setenv("CDR_LAKE_DATA_PATH", f"{root / 'files'}/")
        env.delenv("CDR_CONFIG_FILE", raising=False)
        lake = ExecLake(load_settings(), root)
        _land(lake.settings, _history(), first_sequence=1)
        lake.dbt_run("target-1")
        yield lake


def _kpis(lake: ExecLake) -> pd.DataFrame:
    return lake.query("SELECT * FROM marts.rpt_exec_kpis_intraday ORDER BY kpi_order").set_index("kpi")


def _assert_matches(mart: pd.DataFrame, expected: dict[str, tuple[float, float]]) -> None:
    for kpi, (today, week) in expected.items():
        for column, value in (("value_today", today), ("value_same_time_last_week", week)):
            got = mart.loc[kpi, column]
            assert (pd.isna(got) and pd.isna(value)) or got == pytest.approx(value, rel=1e-9), (kpi, column)


def test_as_of_is_the_landed_watermark_not_the_latest_event(exec_lake: ExecLake) -> None:
    mart = _kpis(exec_lake)
    as_of = pd.Timestamp(mart.as_of.iloc[0]).to_pydatetime()
    # Shard 1's latest opening event (an SMS at 17:58:30) is behind shard 0's (a call at 17:59).
    assert as_of == TODAY + timedelta(hours=17, minutes=58, seconds=30) - ALLOWANCE
    assert pd.Timestamp(mart.last_week_as_of.iloc[0]).to_pydatetime() == as_of - timedelta(days=7)
    latest = exec_lake.query("SELECT max(occurred_at) AS t FROM raw.usage_events").t.iloc[0]
    assert pd.Timestamp(latest).to_pydatetime() == TODAY + timedelta(hours=18, minutes=50, seconds=2)
    sources = exec_lake.query("SELECT * FROM marts.rpt_exec_source_watermarks WHERE bounds_as_of")
    assert sorted(sources.source_name) == list(SHARDS)


def test_today_and_last_week_are_compared_like_for_like(exec_lake: ExecLake) -> None:
    mart = _kpis(exec_lake)
    as_of = pd.Timestamp(mart.as_of.iloc[0]).to_pydatetime()
    events = [e for shard in _history().values() for e in shard]
    _assert_matches(mart, _expected(events, as_of))
    # Calls: 3 today (10:00, 11:00, 17:30) against 2 last week (10:00, 17:30); the latest event time
    # as the cut-off would have counted last week's 18:20 and 18:40 calls too (3 against 4).
    assert (mart.loc["calls", "value_today"], mart.loc["calls", "value_same_time_last_week"]) == (3, 2)
    naive = _expected(events, TODAY + timedelta(hours=18, minutes=50, seconds=2))
    assert naive["calls"] == (4, 4)
    hourly = exec_lake.query("SELECT * FROM marts.rpt_exec_kpis_hourly")
    assert hourly.calls_today.sum() == 3 and hourly.calls_same_time_last_week.sum() == 2
    assert hourly.cumulative_revenue_today.max() == pytest.approx(mart.loc["revenue", "value_today"])


def test_landed_events_show_in_the_next_query_without_dbt(exec_lake: ExecLake) -> None:
    m1, m4 = _member(1), _member(4)
    new = {
        SHARDS[0]: _call(m4, "t-5", TODAY + timedelta(hours=17, minutes=50)),
        SHARDS[1]: _sms(m1, "t-s3", TODAY + timedelta(hours=18, minutes=5)),
    }
    _land(exec_lake.settings, new, first_sequence=1_000)
    mart = _kpis(exec_lake)
    as_of = pd.Timestamp(mart.as_of.iloc[0]).to_pydatetime()
    # Shard 1 moved to 18:05; shard 0 (its call at 17:59) now holds the as-of time.
    assert as_of == TODAY + timedelta(hours=17, minutes=59) - ALLOWANCE
    events = [e for shard in (*_history().values(), *new.values()) for e in shard]
    expected = _expected(events, as_of)
    assert expected["calls"][0] == 4  # the new 17:50 call counts at once
    _assert_matches(mart, expected)
    # A dbt run later closes more hours; the figures stay the same.
    exec_lake.dbt_run("target-2")
    _assert_matches(_kpis(exec_lake), expected)


def test_a_relay_heartbeat_moves_a_quiet_shard_on(exec_lake: ExecLake) -> None:
    # After the test above: nothing new on shard 0 since its 17:59 call, but the relay's heartbeat
    # says it had published everything it read before a producer clock of 18:02; shard 1 is at 18:05.
    # The heartbeat counts as an opening event of its time, allowance included.
    heartbeat = TODAY + timedelta(hours=18, minutes=2)
    con = connect_lake(exec_lake.settings.resolved_lake_catalog, exec_lake.settings.resolved_lake_data_path)
    try:
        checkpoint = ShardCheckpoint("usage", SHARDS[0], "2000", published_through=heartbeat)
        land_batch(con, LandingBatch("kinesis", [], [checkpoint]))
    finally:
        con.close()
    mart = _kpis(exec_lake)
    as_of = pd.Timestamp(mart.as_of.iloc[0]).to_pydatetime()
    assert as_of == heartbeat - ALLOWANCE
    sources = exec_lake.query("SELECT * FROM marts.rpt_exec_source_watermarks").set_index("source_name")
    assert pd.Timestamp(sources.loc[SHARDS[0], "landed_through"]).to_pydatetime() == heartbeat
    events = [e for shard in _history().values() for e in shard]
    m1, m4 = _member(1), _member(4)
    events += _call(m4, "t-5", TODAY + timedelta(hours=17, minutes=50)) + _sms(
        m1, "t-s3", TODAY + timedelta(hours=18, minutes=5)
    )
    _assert_matches(mart, _expected(events, as_of))
