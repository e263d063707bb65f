"""Read a Kinesis stream shard by shard, in lineage order, from positions the caller stores.

Rules this reader keeps (they are how Kinesis behaves, on AWS and in kinesis-local):
- Shards come from ListShards, paginated by hand with NextToken (the token replaces the stream
  name on follow-up calls).
- After a reshard, a child shard is read only once all its parents have reached SHARD_END, and
  from TRIM_HORIZON, so per-partition-key order holds across the reshard.
- A shard has ended when GetRecords returns no NextShardIterator.
- Shard iterators expire after five minutes, so they are never stored: positions are sequence
  numbers (56-digit strings, compared as integers), and a read starts AFTER_SEQUENCE_NUMBER.
- ProvisionedThroughputExceeded is retried with exponential backoff and full jitter.
- A stored position the shard no longer knows (the endpoint lost records it had acknowledged, as
  kinesis-local does when killed between two saves of its state) restarts that shard from
  TRIM_HORIZON, with a warning: landing keeps every event once whatever is read again, and
  reconciliation against EventStoreDB repairs what the endpoint lost.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from cdr_platform.errors import PlatformError

THROTTLED = {"ProvisionedThroughputExceededException", "LimitExceededException"}
UNKNOWN_POSITION = {"ResourceNotFoundException", "InvalidArgumentException"}
log = logging.getLogger(__name__)


class KinesisReadError(PlatformError):
    """Reading the stream failed for a reason that retrying will not fix."""


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parent_ids: tuple[str, ...]
    starting_sequence: str
    ending_sequence: str | None  # set once the shard is closed by a reshard
    start_hash: int = 0
    end_hash: int = 2**128 - 1


@dataclass(frozen=True)
class KinesisRecord:
    """One Kinesis record (possibly a KPL aggregate of several events)."""

    shard_id: str
    sequence_number: str
    partition_key: str
    data: bytes
    arrival_ms: int


@dataclass(frozen=True)
class ShardPage:
    shard_id: str
    records: list[KinesisRecord]
    last_sequence: str | None  # of the last record read, or the starting position if none
    ended: bool  # the shard reached SHARD_END and everything in it has been read
    millis_behind_latest: int


@dataclass(frozen=True)
class ShardPosition:
    """What the caller has landed for a shard."""

    sequence_number: str | None
    ended: bool


def call_with_backoff(
    fn: Callable[..., Any],
    *,
    attempts: int = 8,
    base_s: float = 0.1,
    cap_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> Any:
    """Call a Kinesis API, retrying throttling errors with exponential backoff and full jitter."""
    for attempt in range(attempts):
        try:
            return fn(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in THROTTLED or attempt == attempts - 1:
                raise
            sleep(random.uniform(0, min(cap_s, base_s * 2**attempt)))
    raise AssertionError("unreachable")


def list_shards(client: Any, stream_name: str) -> list[Shard]:
    """Every shard of the stream, open and closed, following NextToken by hand."""
    shards: list[Shard] = []
    kwargs: dict[str, Any] = {"StreamName": stream_name}
    while True:
        page = call_with_backoff(client.list_shards, **kwargs)
        for raw in page["Shards"]:
            parents = tuple(p for p in (raw.get("ParentShardId"), raw.get("AdjacentParentShardId")) if p)
            seq, hashes = raw["SequenceNumberRange"], raw["HashKeyRange"]
            shards.append(
                Shard(
                    raw["ShardId"],
                    parents,
                    seq["StartingSequenceNumber"],
                    seq.get("EndingSequenceNumber"),
                    int(hashes["StartingHashKey"]),
                    int(hashes["EndingHashKey"]),
                )
            )
        token = page.get("NextToken")
        if not token:
            return shards
        kwargs = {"NextToken": token}


def readable_shards(shards: list[Shard], positions: Mapping[str, ShardPosition]) -> list[Shard]:
    """Shards that may be read now: not finished, and every parent finished (or expired)."""
    known = {shard.shard_id for shard in shards}

    def finished(shard_id: str) -> bool:
        position = positions.get(shard_id)
        # A parent no longer listed has aged out of retention: nothing of it is left to read.
        return shard_id not in known or (position is not None and position.ended)

    return [s for s in shards if not finished(s.shard_id) and all(finished(p) for p in s.parent_ids)]


def sequence_after(a: str | None, b: str | None) -> bool:
    """True when sequence number ``a`` is later than ``b`` (None is before everything)."""
    if a is None:
        return False
    return b is None or int(a) > int(b)


def shard_iterator(client: Any, stream_name: str, shard_id: str, after: str | None) -> tuple[str, str | None]:
    """An iterator after ``after`` (None: from TRIM_HORIZON), and the position it really starts
    after: None when the shard no longer knows ``after`` and the read restarts from its beginning."""
    kwargs: dict[str, Any] = {"StreamName": stream_name, "ShardId": shard_id}
    if after is not None:
        try:
            response = call_with_backoff(
                client.get_shard_iterator,
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                StartingSequenceNumber=after,
                **kwargs,
            )
            return response["ShardIterator"], after
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") not in UNKNOWN_POSITION or "SequenceNumber" not in error.get("Message", ""):
                raise
        log.warning(
            "%s/%s no longer holds the landed position %s (the endpoint lost records): reading it again "
            "from TRIM_HORIZON; landing keeps each event once, reconciliation repairs what was lost",
            stream_name,
            shard_id,
            after,
        )
    response = call_with_backoff(client.get_shard_iterator, ShardIteratorType="TRIM_HORIZON", **kwargs)
    return response["ShardIterator"], None


def read_shard_page(
    client: Any,
    stream_name: str,
    shard_id: str,
    after: str | None,
    max_records: int = 10_000,
    *,
    max_bytes: int = 32 * 1024 * 1024,
    closed: bool = False,
    max_calls: int = 100,
) -> ShardPage:
    """Read a bounded page of a shard after a sequence number (None: from the start).

    The page stops at ``max_records`` Kinesis records or ``max_bytes`` of data (a record can be a
    256 KiB aggregate), or when an open shard is caught up (no records, nothing behind). A closed
    shard is followed until GetRecords returns no next iterator, since reaching its end may take
    several empty calls; ``max_calls`` bounds one page. Sequence numbers must rise within a shard
    (compared as integers); anything else is an error, never a silent skip.
    """
    iterator: str | None
    iterator, last = shard_iterator(client, stream_name, shard_id, after)
    records: list[KinesisRecord] = []
    behind = 0
    size = 0
    for _ in range(max_calls):
        if iterator is None or len(records) >= max_records or size >= max_bytes:
            break
        page = call_with_backoff(
            client.get_records, ShardIterator=iterator, Limit=min(10_000, max_records - len(records))
        )
        for raw in page["Records"]:
            if not sequence_after(raw["SequenceNumber"], last):
                sequence = raw["SequenceNumber"]
                raise KinesisReadError(
                    f"{stream_name}/{shard_id}: sequence {sequence} does not follow {last}"
                )
            records.append(
                KinesisRecord(
                    shard_id,
                    raw["SequenceNumber"],
                    raw["PartitionKey"],
                    raw["Data"],
                    int(raw["ApproximateArrivalTimestamp"].timestamp() * 1000),
                )
            )
            size += len(raw["Data"])
            last = raw["SequenceNumber"]
        iterator = page.get("NextShardIterator")
        behind = int(page.get("MillisBehindLatest", 0))
        if not page["Records"] and behind == 0 and not closed:
            break
    return ShardPage(shard_id, records, last, ended=iterator is None, millis_behind_latest=behind)


def shard_has_news(client: Any, stream_name: str, shard: Shard, position: ShardPosition | None) -> bool:
    """Cheap probe for the sensor: is there anything after the landed position?

    A closed shard has news until its end has landed. An open one is asked for at most one
    record after the position; only its existence is looked at, the payload is never parsed.
    """
    if shard.ending_sequence is not None:
        return not (position and position.ended)
    landed = position.sequence_number if position else None
    iterator, _ = shard_iterator(client, stream_name, shard.shard_id, landed)
    page = call_with_backoff(client.get_records, ShardIterator=iterator, Limit=1)
    return bool(page["Records"]) or int(page.get("MillisBehindLatest", 0)) > 0
