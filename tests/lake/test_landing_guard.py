"""One record never fails a batch: whatever goes wrong parsing it, it is dead-lettered and the rest lands.

The failing parser is injected through ``land_batch(parse=...)``: ``parse_event`` no longer raises on
any known input (tests/events/test_parser_properties.py), so a stand-in that raises is the honest way to
prove the guard holds for the failures nobody has found yet.
"""

from __future__ import annotations

import json
import re

import duckdb
import pytest

from cdr_platform.events import Event, Rejection, RejectionReason, encode_event, parse_event
from cdr_platform.lake.dead_letter import reprocess_dead_letter
from cdr_platform.lake.landing import (
    LandingBatch,
    ShardCheckpoint,
    SourceRecord,
    land_batch,
    load_shard_checkpoints,
)
from tests.events.samples import build_event, sample_document

pytestmark = pytest.mark.unit

POISON = b'{"poison": true}'


def raising_on_poison(data: bytes) -> Event | Rejection:
    """``parse_event``, except that the poison record raises the exception the issue reported."""
    if data == POISON:
        return 10**400 / 1000  # OverflowError: integer division result too large for a float
    return parse_event(data)


def good_records(count: int, prefix: str) -> list[SourceRecord]:
    types = ["call_ended", "sms_submitted", "member_activated", "usage_rated", "data_session_ended"]
    return [
        SourceRecord(encode_event(build_event(types[i % len(types)], f"{prefix}-{i}")), f"shard-0/{i}/0")
        for i in range(count)
    ]


def dead_letters(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, bytes, bool]]:
    return con.execute(
        "SELECT source_position, reason, detail, raw_data, resolved_at IS NOT NULL FROM raw.dead_letter"
        " ORDER BY source_position"
    ).fetchall()


def landed_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT event_id::VARCHAR FROM raw.usage_events"
        " UNION ALL SELECT event_id::VARCHAR FROM raw.member_events"
    ).fetchall()
    return {row[0] for row in rows}


def test_a_record_whose_parsing_raises_is_dead_lettered_and_the_rest_of_the_batch_lands(
    lake: duckdb.DuckDBPyConnection,
) -> None:
    records = good_records(50, "guard")
    records.insert(20, SourceRecord(POISON, "shard-0/poison/0"))
    batch = LandingBatch(
        "kinesis", records, shard_checkpoints=[ShardCheckpoint("usage", "shard-0", "49", False)]
    )

    result = land_batch(lake, batch, parse=raising_on_poison)

    assert (result.received, result.landed, result.dead_lettered) == (51, 50, 1)
    assert landed_ids(lake) == {json.loads(r.data)["event_id"] for r in records if r.data != POISON}
    [(position, reason, detail, raw, resolved)] = dead_letters(lake)
    assert (position, reason, raw, resolved) == ("shard-0/poison/0", "parser_exception", POISON, False)
    assert re.fullmatch(
        r"OverflowError: integer division result too large for a float "
        r"\(test_landing_guard\.py:\d+ in raising_on_poison\)",
        detail,
    ), detail
    assert load_shard_checkpoints(lake, "usage")["shard-0"].sequence_number == "49"  # the run moves on


def test_the_reported_record_now_lands_as_an_invalid_value(lake: duckdb.DuckDBPyConnection) -> None:
    """The record from the issue: a v1 call_ended with duration_ms = 10**400, among 50 good ones."""
    doc = sample_document("call_ended", 1, business_key="huge")
    doc["payload"]["duration_ms"] = 10**400
    records = good_records(50, "issue")
    records.append(SourceRecord(json.dumps(doc).encode(), "shard-0/huge/0"))

    result = land_batch(lake, LandingBatch("kinesis", records))

    assert (result.landed, result.dead_lettered) == (50, 1)
    [(_, reason, detail, _, _)] = dead_letters(lake)
    assert reason == RejectionReason.INVALID_VALUE
    assert detail.startswith("field 'payload.duration_ms' must be <= 9223372036854775807, got 1000000")


@pytest.mark.parametrize(
    "parsed",
    [
        build_event("call_ended", "surrogate").model_copy(update={"member_id": "M\ud800"}),
        Rejection(RejectionReason.UNKNOWN_EVENT_TYPE, "unknown event_type '\\ud800'", "\ud800"),
    ],
    ids=["event", "rejection"],
)
def test_a_parse_result_the_warehouse_cannot_store_is_dead_lettered(
    lake: duckdb.DuckDBPyConnection, parsed: Event | Rejection
) -> None:
    """DuckDB invalidates the whole database on text that is not UTF-8; the guard keeps such text out."""

    def parse(data: bytes) -> Event | Rejection:
        return parsed if data == POISON else parse_event(data)

    records = [*good_records(3, "storable"), SourceRecord(POISON, "shard-0/poison/0")]
    result = land_batch(lake, LandingBatch("kinesis", records), parse=parse)

    assert (result.landed, result.dead_lettered) == (3, 1)
    [(_, reason, detail, _, _)] = dead_letters(lake)
    field = "member_id" if isinstance(parsed, Event) else "event_type"
    kind = "event" if isinstance(parsed, Event) else "rejection"
    assert reason == "parser_exception"
    assert detail.startswith(f"ValueError: the {kind}'s {field} is not UTF-8 text: surrogates not allowed")
    assert len(landed_ids(lake)) == 3  # the database is still usable


def test_a_dead_letter_stays_open_while_its_parsing_raises_and_lands_once_the_parser_is_fixed(
    lake: duckdb.DuckDBPyConnection,
) -> None:
    valid = encode_event(build_event("call_ended", "fixed-later"))

    def raising_on_valid(data: bytes) -> Event | Rejection:
        if data == valid:
            raise RecursionError("maximum recursion depth exceeded")
        return parse_event(data)

    land_batch(lake, LandingBatch("kinesis", [SourceRecord(valid, "shard-0/1/0")]), parse=raising_on_valid)
    assert reprocess_dead_letter(lake, parse=raising_on_valid).still_rejected == 1  # no exception either
    assert not dead_letters(lake)[0][4]

    fixed = reprocess_dead_letter(lake)

    assert (fixed.resolved, fixed.landed) == (1, 1)
    assert dead_letters(lake)[0][4]
    assert landed_ids(lake) == {json.loads(valid)["event_id"]}
