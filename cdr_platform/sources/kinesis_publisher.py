"""Publish events to a Kinesis stream, KPL-aggregated, keeping per-partition-key order.

Records are grouped by the shard whose hash-key range holds ``md5(partition key)``, packed into
aggregates (``events.framing``), and each aggregate is routed to that shard with an explicit hash
key. One put_records call carries at most one aggregate per shard, so a failed entry is retried
before anything after it on the same shard is sent: per-key order holds through retries. The
shard map is re-read before a publish when older than ``refresh_s`` (one ListShards call), so
a reshard is noticed before records are grouped by stale shards.
Delivery is at least once: a retried call may duplicate an aggregate that had in fact landed;
consumers dedupe by event id.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from cdr_platform.errors import PlatformError
from cdr_platform.events.framing import DEFAULT_TARGET_BYTES, UserRecord, pack_records
from cdr_platform.sources.kinesis_reader import THROTTLED, call_with_backoff


class KinesisPublishError(PlatformError):
    """Records could not be published after all retries; nothing after them was sent."""


@dataclass(frozen=True)
class OpenShard:
    shard_id: str
    start_hash: int
    end_hash: int


def hash_key(partition_key: str) -> int:
    """Kinesis's routing hash: the 128-bit MD5 of the partition key, as an integer."""
    return int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big")


def open_shards(client: Any, stream_name: str) -> list[OpenShard]:
    shards, kwargs = [], {"StreamName": stream_name, "ShardFilter": {"Type": "AT_LATEST"}}
    while True:
        page = call_with_backoff(client.list_shards, **kwargs)
        for raw in page["Shards"]:
            if "EndingSequenceNumber" in raw["SequenceNumberRange"]:
                continue
            rng = raw["HashKeyRange"]
            shards.append(OpenShard(raw["ShardId"], int(rng["StartingHashKey"]), int(rng["EndingHashKey"])))
        if not page.get("NextToken"):
            return sorted(shards, key=lambda s: s.start_hash)
        kwargs = {"NextToken": page["NextToken"]}


@dataclass
class PublishStats:
    events: int = 0
    kinesis_records: int = 0
    bytes: int = 0
    retries: int = 0


class KinesisPublisher:
    """Aggregating, order-keeping publisher for one stream."""

    def __init__(
        self,
        client: Any,
        stream_name: str,
        *,
        target_record_bytes: int = DEFAULT_TARGET_BYTES,
        refresh_s: float = 1.0,
        max_attempts: int = 10,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.stream_name = stream_name
        self.target_record_bytes = target_record_bytes
        self.refresh_s = refresh_s
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.stats = PublishStats()
        self._shards: list[OpenShard] = []
        self._refreshed_at = float("-inf")

    def _shard_for(self, key_hash: int) -> OpenShard:
        for shard in self._shards:
            if shard.start_hash <= key_hash <= shard.end_hash:
                return shard
        raise KinesisPublishError(f"no open shard of {self.stream_name} covers hash key {key_hash}")

    def refresh_shards(self) -> None:
        self._shards = open_shards(self.client, self.stream_name)
        self._refreshed_at = time.monotonic()

    def publish(self, records: Sequence[UserRecord]) -> None:
        """Publish in order; returns once Kinesis acknowledged every record (or raises)."""
        if not records:
            return
        if time.monotonic() - self._refreshed_at > self.refresh_s:
            self.refresh_shards()
        queues: dict[str, list[tuple[str, bytes, int]]] = {}
        grouped: dict[str, list[UserRecord]] = {}
        for record in records:
            grouped.setdefault(self._shard_for(hash_key(record.partition_key)).shard_id, []).append(record)
        for shard_id, shard_records in grouped.items():
            queues[shard_id] = [
                (agg.partition_key, agg.data, hash_key(agg.partition_key))
                for agg in pack_records(shard_records, self.target_record_bytes)
            ]
        self._send(queues)
        self.stats.events += len(records)

    def _send(self, queues: dict[str, list[tuple[str, bytes, int]]]) -> None:
        attempt = 0
        while any(queues.values()):
            heads = {shard: queue[0] for shard, queue in queues.items() if queue}
            entries = [
                {"PartitionKey": key, "Data": data, "ExplicitHashKey": str(key_hash)}
                for key, data, key_hash in heads.values()
            ]
            try:
                response = call_with_backoff(
                    self.client.put_records, sleep=self.sleep, StreamName=self.stream_name, Records=entries
                )
            except ClientError as exc:
                raise KinesisPublishError(f"put_records to {self.stream_name} failed: {exc}") from exc
            failed = False
            for shard, result in zip(heads, response["Records"], strict=True):
                if "ErrorCode" in result:
                    failed = True
                    if result["ErrorCode"] not in THROTTLED and result["ErrorCode"] != "InternalFailure":
                        raise KinesisPublishError(f"{self.stream_name}/{shard}: {result.get('ErrorMessage')}")
                else:
                    _, data, _ = queues[shard].pop(0)
                    self.stats.kinesis_records += 1
                    self.stats.bytes += len(data)
            if failed:
                attempt += 1
                self.stats.retries += 1
                if attempt >= self.max_attempts:
                    raise KinesisPublishError(
                        f"{self.stream_name}: records still throttled after {attempt} tries"
                    )
                self.sleep(random.uniform(0, min(5.0, 0.1 * 2**attempt)))
            else:
                attempt = 0
