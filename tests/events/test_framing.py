"""KPL aggregation: our framing and the aws-kinesis-agg package read each other's records."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import aws_kinesis_agg.aggregator as kpl_aggregator
import aws_kinesis_agg.deaggregator as kpl_deaggregator
import pytest

from cdr_platform.events.framing import (
    MAGIC,
    UserRecord,
    deaggregate,
    decode_aggregate,
    encode_aggregate,
    pack_records,
)

pytestmark = pytest.mark.unit

RECORDS = [UserRecord(f"member-{i % 3}", f'{{"n": {i}}}'.encode() * (i + 1)) for i in range(50)]


def test_round_trip_keeps_order_and_keys() -> None:
    assert decode_aggregate(encode_aggregate(RECORDS)) == RECORDS


def test_aws_kinesis_agg_reads_our_aggregates() -> None:
    data = encode_aggregate(RECORDS)
    raw = {
        "SequenceNumber": "1",
        "PartitionKey": "member-0",
        "ApproximateArrivalTimestamp": datetime.now(UTC),
    }
    users = list(kpl_deaggregator.iter_deaggregate_records([{**raw, "Data": data}], data_format="Boto3"))
    decoded = [
        UserRecord(u["kinesis"]["partitionKey"], base64.b64decode(u["kinesis"]["data"])) for u in users
    ]
    assert decoded == RECORDS


def test_we_read_aws_kinesis_agg_aggregates() -> None:
    aggregator = kpl_aggregator.RecordAggregator()
    for record in RECORDS:
        assert aggregator.add_user_record(record.partition_key, record.data) is None
    _, _, data = aggregator.clear_and_get().get_contents()
    assert decode_aggregate(data) == RECORDS


def test_plain_or_corrupt_records_pass_through_whole() -> None:
    assert deaggregate("k", b'{"plain": true}') == [UserRecord("k", b'{"plain": true}')]
    corrupt = bytearray(encode_aggregate(RECORDS))
    corrupt[10] ^= 0xFF
    assert deaggregate("k", bytes(corrupt)) == [UserRecord("k", bytes(corrupt))]


def test_pack_records_respects_the_size_target_and_order() -> None:
    packed = list(pack_records(RECORDS, target_bytes=4096))
    assert len(packed) > 1
    assert all(len(p.data) <= 4096 for p in packed)
    assert [u for p in packed for u in deaggregate(p.partition_key, p.data)] == RECORDS


def test_an_empty_aggregate_holds_no_records() -> None:
    assert deaggregate("k", encode_aggregate([])) == []


def test_records_outside_the_kpl_layout_decode_too() -> None:
    """Key indexes from 128 up (two-byte varints) and fields in another order take the general path."""
    many_keys = [UserRecord(f"k{i}", f"{i}".encode()) for i in range(300)]
    assert decode_aggregate(encode_aggregate(many_keys)) == many_keys
    key, data = b"\x0a\x01k", b"\x1a\x03abc\x08\x00"  # Record{data=3, partition_key_index=1}
    body = key + b"\x1a" + bytes([len(data)]) + data
    assert decode_aggregate(MAGIC + body + hashlib.md5(body, usedforsecurity=False).digest()) == [
        UserRecord("k", b"abc")
    ]
