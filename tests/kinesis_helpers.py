"""Test helpers that put events on kinesis-local the way the relay does (KPL aggregates)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from cdr_platform.events import Event, encode_event
from cdr_platform.events.framing import UserRecord, pack_records


def new_stream(client: Any, shards: int = 2) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    return name


def put_raw(client: Any, stream: str, items: Sequence[tuple[str, bytes]]) -> None:
    """Put (partition key, data) records, 500 per call, failing loudly on any rejected record."""
    for start in range(0, len(items), 500):
        chunk = items[start : start + 500]
        result = client.put_records(
            StreamName=stream, Records=[{"PartitionKey": k, "Data": d} for k, d in chunk]
        )
        assert result["FailedRecordCount"] == 0, result


def put_events(client: Any, stream: str, events: Sequence[Event], per_record: int = 20) -> None:
    """Aggregate events per member into KPL records and put them."""
    by_member: dict[str, list[UserRecord]] = {}
    for event in events:
        by_member.setdefault(event.member_id, []).append(UserRecord(event.member_id, encode_event(event)))
    packed = [
        (record.partition_key, record.data)
        for records in by_member.values()
        for start in range(0, len(records), per_record)
        for record in pack_records(records[start : start + per_record])
    ]
    put_raw(client, stream, packed)


def usage_events(count: int, members: int = 10, prefix: str = "e") -> list[Event]:
    """Distinct valid usage events spread over ``members`` members and a few minutes of event time."""
    from datetime import timedelta

    from cdr_platform.events import make_event
    from tests.events.samples import OCCURRED_AT, SAMPLE_PAYLOADS

    kinds = ["call_ended", "sms_delivered", "data_session_ended", "topup_completed"]
    return [
        make_event(
            kinds[i % len(kinds)],
            business_key=f"{prefix}-{i}",
            occurred_at=OCCURRED_AT + timedelta(seconds=i),
            member_id=f"M{i % members:07d}",
            correlation_id=f"{prefix}-{i}",
            producer="msc-mediation",
            payload=SAMPLE_PAYLOADS[kinds[i % len(kinds)]],
        )
        for i in range(count)
    ]
