"""Pack many events into one Kinesis record, in the KPL aggregated-record format.

One Kinesis shard takes at most 1,000 records/s and 1 MB/s, so the relay packs several events per
record. The format is the Kinesis Producer Library's, which every KCL consumer and the
``aws-kinesis-agg`` package read: ``MAGIC (f3 89 9a c2) + protobuf AggregatedRecord + md5``, where

    message AggregatedRecord { repeated string partition_key_table = 1;
                               repeated string explicit_hash_key_table = 2;
                               repeated Record records = 3; }
    message Record { required uint64 partition_key_index = 1; optional uint64 explicit_hash_key_index = 2;
                     required bytes data = 3; }

It is written here with a few lines of varint code because the package's generated module does not
import on its own; the tests check both directions against ``aws-kinesis-agg``. A record without the
magic prefix, or whose digest does not match, is passed through as a single user record, exactly as
the KPL deaggregator does, so a malformed record reaches the dead letter instead of vanishing.

De-aggregation never raises and runs in linear time on any bytes: varints longer than protobuf's
10 bytes, truncated fields, unknown wire types and out-of-range key indexes all mean "not an aggregate".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAGIC = b"\xf3\x89\x9a\xc2"
DIGEST_SIZE = 16
MAX_RECORD_BYTES = 1024 * 1024  # Kinesis: data + partition key of one record
MAX_VARINT_BYTES = 10  # a protobuf varint encodes at most a uint64
DEFAULT_TARGET_BYTES = 256 * 1024


@dataclass(frozen=True)
class UserRecord:
    partition_key: str
    data: bytes


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it; bounded, so a run of continuation bytes is cheap."""
    result = shift = 0
    end = pos + MAX_VARINT_BYTES
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        if pos >= end:
            raise ValueError(f"varint longer than {MAX_VARINT_BYTES} bytes")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
            yield number, value
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated field")
            yield number, buf[pos : pos + length]
            pos += length
        else:
            raise ValueError(f"unsupported wire type {wire}")


def encode_aggregate(records: Iterable[UserRecord]) -> bytes:
    """One KPL aggregated record holding ``records`` in order."""
    keys: dict[str, int] = {}
    body = bytearray()
    entries = bytearray()
    for record in records:
        index = keys.setdefault(record.partition_key, len(keys))
        inner = _varint(1 << 3) + _varint(index) + _field(3, record.data)
        entries += _field(3, inner)
    for key in keys:
        body += _field(1, key.encode())
    body += entries
    return MAGIC + bytes(body) + _digest(body)


def _digest(body: bytes | bytearray) -> bytes:
    """The KPL's MD5 checksum (an integrity check, not security, so FIPS-mode interpreters allow it)."""
    return hashlib.md5(body, usedforsecurity=False).digest()


def decode_aggregate(data: bytes) -> list[UserRecord] | None:
    """The user records of an aggregated record, or None if ``data`` is not a valid aggregate."""
    if len(data) < len(MAGIC) + DIGEST_SIZE or not data.startswith(MAGIC):
        return None
    body, digest = data[len(MAGIC) : -DIGEST_SIZE], data[-DIGEST_SIZE:]
    if _digest(body) != digest:
        return None
    try:
        keys: list[str] = []
        records: list[UserRecord] = []
        for number, value in _fields(body):
            if number == 1 and isinstance(value, bytes):
                keys.append(value.decode())
            elif number == 3 and isinstance(value, bytes):
                inner = dict(_fields(value))
                key_index, payload = inner.get(1), inner.get(3)
                if not isinstance(key_index, int) or not isinstance(payload, bytes):
                    return None
                records.append(UserRecord(keys[key_index], payload))
        return records
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


def deaggregate(partition_key: str, data: bytes) -> list[UserRecord]:
    """User records of a Kinesis record: the aggregate's contents, or the record itself."""
    records = decode_aggregate(data)
    return records if records is not None else [UserRecord(partition_key, data)]


def _entry_size(record: UserRecord, new_key: bool) -> int:
    size = len(record.data) + 16
    return size + (len(record.partition_key) + 4 if new_key else 0)


def pack_records(
    records: Iterable[UserRecord], target_bytes: int = DEFAULT_TARGET_BYTES
) -> Iterator[UserRecord]:
    """Group user records into aggregates of at most ``target_bytes``, keeping their order.

    Kinesis routes an aggregate by one key (its first record's), so pass only records bound for
    the same shard (the relay groups by the shards' hash-key ranges), or per-key order is lost.
    """
    batch: list[UserRecord] = []
    keys: set[str] = set()
    size = len(MAGIC) + DIGEST_SIZE
    for record in records:
        grow = _entry_size(record, record.partition_key not in keys)
        if batch and size + grow > target_bytes:
            yield UserRecord(batch[0].partition_key, encode_aggregate(batch))
            batch, keys, size = [], set(), len(MAGIC) + DIGEST_SIZE
            grow = _entry_size(record, True)
        batch.append(record)
        keys.add(record.partition_key)
        size += grow
    if batch:
        yield UserRecord(batch[0].partition_key, encode_aggregate(batch))
