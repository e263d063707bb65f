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


def _read_varint(buf: bytes, pos: int, limit: int) -> tuple[int, int]:
    """The varint at ``pos`` (ending before ``limit``) and the position after it; bounded, so a run
    of continuation bytes is cheap. A one-byte varint, nearly every one here, takes one step."""
    if pos >= limit:
        raise ValueError("truncated varint")
    byte = buf[pos]
    if byte < 0x80:
        return byte, pos + 1
    result = shift = 0
    end = min(pos + MAX_VARINT_BYTES, limit)
    while True:
        if pos >= end:
            raise ValueError(
                "truncated varint" if end == limit else f"varint longer than {MAX_VARINT_BYTES} bytes"
            )
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _skip_or_span(buf: bytes, pos: int, limit: int) -> tuple[int, int, int, int]:
    """The field at ``pos``: (number, wire type, value or start of its bytes, position after it)."""
    key, pos = _read_varint(buf, pos, limit)
    wire = key & 7
    if wire == 0:
        value, pos = _read_varint(buf, pos, limit)
        return key >> 3, 0, value, pos
    if wire == 2:
        length, pos = _read_varint(buf, pos, limit)
        if pos + length > limit:
            raise ValueError("truncated field")
        return key >> 3, 2, pos, pos + length
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
    """The user records of an aggregated record, or None if ``data`` is not a valid aggregate.

    Reads the protobuf in place (positions into one buffer, no slice per field): this is the hot
    path of landing. Within a record the last occurrence of a field wins, as protobuf specifies.
    """
    if len(data) < len(MAGIC) + DIGEST_SIZE or not data.startswith(MAGIC):
        return None
    body, digest = data[len(MAGIC) : -DIGEST_SIZE], data[-DIGEST_SIZE:]
    if _digest(body) != digest:
        return None
    try:
        keys: list[str] = []
        records: list[UserRecord] = []
        pos, limit = 0, len(body)
        while pos < limit:
            number, wire, value, pos = _skip_or_span(body, pos, limit)
            if wire != 2:
                continue
            if number == 1:
                keys.append(body[value:pos].decode())
            elif number == 3:
                record = _user_record(body, value, pos, keys)
                if record is None:
                    return None
                records.append(record)
        return records
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


def _user_record(body: bytes, pos: int, limit: int, keys: list[str]) -> UserRecord | None:
    """The ``Record`` message in ``body[pos:limit]``; None without a key index or data."""
    if limit - pos > 4 and body[pos] == 0x08 and body[pos + 1] < 0x80 and body[pos + 2] == 0x1A:
        # The KPL's own layout (key index < 128, then the data, nothing else): read it directly.
        length, start = _read_varint(body, pos + 3, limit)
        if start + length == limit:
            return UserRecord(keys[body[pos + 1]], body[start:limit])
    key_index: int | None = None  # None: absent, or the last occurrence was not a varint
    span: tuple[int, int] | None = None  # None: absent, or the last occurrence was not bytes
    while pos < limit:
        number, wire, value, pos = _skip_or_span(body, pos, limit)
        if number == 1:
            key_index = value if wire == 0 else None
        elif number == 3:
            span = (value, pos) if wire == 2 else None
    if key_index is None or span is None:
        return None
    return UserRecord(keys[key_index], body[span[0] : span[1]])


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
