"""Publish events to a Kinesis stream, KPL-aggregated, in per-partition-key order, following reshards.

Records are grouped by the shard whose hash-key range holds md5(partition key), packed into KPL
aggregates (``events.framing``) per shard, and each put_records call carries at most one aggregate per
shard; a failed aggregate is retried (backoff with full jitter) before the next one of its shard is
sent, so a retried failure can never overtake or be overtaken and per-key order holds. The shard map is
refreshed periodically and whenever put_records reports a shard the map does not know (a reshard).
Delivery is at least once: consumers deduplicate on event_id. Used by the relay and by new-consumer
streams, so both write the same record format.
"""

from __future__ import annotations

import bisect
import hashlib
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from cdr_platform.errors import PlatformError
from cdr_platform.events.framing import DEFAULT_TARGET_BYTES, UserRecord, deaggregate, pack_records
from cdr_platform.sources.kinesis_reader import call_with_backoff, list_shards

MAX_CALL_BYTES = 4_500_000  # put_records: 5 MB per call
MAX_CALL_RECORDS = 500


class KinesisPublishError(PlatformError):
    """Kinesis kept refusing records, or the stream cannot be written; nothing after them was sent."""


def hash_key(partition_key: str) -> int:
    return int.from_bytes(hashlib.md5(partition_key.encode()).digest())


class ShardMap:
    """Open shards by hash-key range; ``shard_for`` finds the shard a partition key is routed to."""

    def __init__(self, shards: Sequence[tuple[str, int, int]]) -> None:
        self.shards = sorted(shards, key=lambda s: s[1])
        self.starts = [start for _, start, _ in self.shards]
        self.ids = frozenset(shard_id for shard_id, _, _ in self.shards)
        self._cache: dict[str, str] = {}

    def shard_for(self, partition_key: str) -> str:
        shard = self._cache.get(partition_key)
        if shard is None:
            index = bisect.bisect_right(self.starts, hash_key(partition_key)) - 1
            shard = self._cache[partition_key] = self.shards[max(index, 0)][0]
        return shard


def load_shard_map(client: Any, stream_name: str) -> ShardMap:
    """Open shards (no ending sequence number) of the stream, by hash-key range."""
    shards = [
        (shard.shard_id, shard.start_hash, shard.end_hash)
        for shard in list_shards(client, stream_name)
        if shard.ending_sequence is None
    ]
    if not shards:
        raise KinesisPublishError(f"Kinesis stream {stream_name} has no open shard")
    return ShardMap(shards)


def wait_until_active(client: Any, stream_name: str, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        summary = call_with_backoff(client.describe_stream_summary, StreamName=stream_name)
        status = summary["StreamDescriptionSummary"]["StreamStatus"]
        if status == "ACTIVE":
            return
        if time.monotonic() > deadline:
            raise KinesisPublishError(f"Kinesis stream {stream_name} still {status} after {deadline_s}s")
        time.sleep(0.1)


class KinesisPublisher:
    """Puts user records on a stream in per-shard order, following reshards; the relay's write half.

    Each put_records call carries at most one aggregate per shard, and a shard's next aggregate is sent
    only once the previous one was acknowledged, so a retried failure can never overtake or be overtaken.
    """

    def __init__(
        self,
        client: Any,
        stream_name: str,
        aggregate_bytes: int = DEFAULT_TARGET_BYTES,
        shard_refresh_s: float = 30.0,
        max_put_attempts: int = 10,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.stream_name = stream_name
        self.aggregate_bytes = aggregate_bytes
        self.shard_refresh_s = shard_refresh_s
        self.max_put_attempts = max_put_attempts
        self.sleep = sleep
        self.records_put = 0
        self._rng = random.Random()
        self._shard_map: ShardMap | None = None
        self._loaded = 0.0

    @property
    def shard_map(self) -> ShardMap:
        """The open shards, loaded on first use (building a publisher never calls Kinesis) and when stale."""
        if self._shard_map is None or time.monotonic() - self._loaded > self.shard_refresh_s:
            return self.refresh()
        return self._shard_map

    def refresh(self) -> ShardMap:
        self._shard_map = load_shard_map(self.client, self.stream_name)
        self._loaded = time.monotonic()
        return self._shard_map

    def forget_shards(self) -> None:
        """Drop the shard map, so the next put lists the shards again (after an outage, say)."""
        self._shard_map = None

    def reshard(self, target: int | None = None) -> tuple[int, int]:
        """UpdateShardCount to ``target`` (default: double), wait until ACTIVE; returns (before, after)."""
        before = len(self.shard_map.ids)
        target = target or before * 2
        call_with_backoff(
            self.client.update_shard_count,
            StreamName=self.stream_name,
            TargetShardCount=target,
            ScalingType="UNIFORM_SCALING",
        )
        wait_until_active(self.client, self.stream_name)
        self.refresh()
        return before, target

    def put(self, records: Sequence[UserRecord]) -> None:
        """Put every record, in order per shard; raises ``KinesisPublishError`` if Kinesis keeps refusing.

        Nothing to put calls nothing. Endpoint errors (botocore's) propagate unchanged: what was put before
        them stays put, so a caller that retries the whole batch publishes some records twice, never none.
        """
        if not records:
            return
        shard_map = self.shard_map
        queues: dict[str, list[UserRecord]] = {}
        for record in records:
            queues.setdefault(shard_map.shard_for(record.partition_key), []).append(record)
        pending = {shard: list(pack_records(recs, self.aggregate_bytes)) for shard, recs in queues.items()}
        attempts = 0
        while pending:
            heads: list[tuple[str, UserRecord]] = []
            size = 0
            for shard, aggregates in pending.items():
                head = aggregates[0]
                if heads and (size + len(head.data) > MAX_CALL_BYTES or len(heads) >= MAX_CALL_RECORDS):
                    break
                heads.append((shard, head))
                size += len(head.data)
            failed, unknown_shard = self._put_heads(heads, shard_map.ids)
            for shard, _ in heads:
                if shard not in failed:
                    pending[shard].pop(0)
                    if not pending[shard]:
                        del pending[shard]
            if unknown_shard:
                # The stream was resharded under us: re-route what is left with a fresh map.
                self.refresh()
                rest = [
                    user
                    for aggregates in pending.values()
                    for aggregate in aggregates
                    for user in deaggregate(aggregate.partition_key, aggregate.data)
                ]
                self.put(rest)
                return
            if failed:
                attempts += 1
                if attempts >= self.max_put_attempts:
                    raise KinesisPublishError(
                        f"Kinesis kept refusing records for shards {sorted(failed)} of {self.stream_name} "
                        f"after {attempts} attempts; check the stream's capacity"
                    )
                self.sleep(self._rng.uniform(0, min(5.0, 0.05 * 2**attempts)))
            else:
                attempts = 0

    def put_on_every_shard(self, partition_key: str, data: bytes) -> None:
        """Put one plain record on every open shard (explicit hash key: the middle of its range).

        Raises ``KinesisPublishError`` if Kinesis keeps refusing one. If the stream was resharded under
        the map, the record goes again to every shard of a fresh map: a shard may get it twice, none
        misses it.
        """
        for attempt in range(self.max_put_attempts):
            shard_map = self.shard_map
            records = [
                {"PartitionKey": partition_key, "Data": data, "ExplicitHashKey": str((start + end) // 2)}
                for _, start, end in shard_map.shards
            ]
            try:
                response = call_with_backoff(
                    self.client.put_records, StreamName=self.stream_name, Records=records
                )
            except ClientError as exc:
                raise KinesisPublishError(f"put_records to {self.stream_name} failed: {exc}") from exc
            results = response["Records"]  # not counted in records_put, which counts event aggregates
            if any(r.get("ShardId") not in shard_map.ids for r in results if not r.get("ErrorCode")):
                self.refresh()
                continue
            if not any(r.get("ErrorCode") for r in results):
                return
            self.sleep(self._rng.uniform(0, min(5.0, 0.05 * 2 ** (attempt + 1))))  # as ``put`` backs off
        raise KinesisPublishError(
            f"Kinesis kept refusing a record for every shard of {self.stream_name} after "
            f"{self.max_put_attempts} attempts; check the stream's capacity"
        )

    def _put_heads(self, heads: list[tuple[str, UserRecord]], known: frozenset[str]) -> tuple[set[str], bool]:
        try:
            response = call_with_backoff(
                self.client.put_records,
                StreamName=self.stream_name,
                Records=[{"PartitionKey": record.partition_key, "Data": record.data} for _, record in heads],
            )
        except ClientError as exc:
            raise KinesisPublishError(f"put_records to {self.stream_name} failed: {exc}") from exc
        failed: set[str] = set()
        unknown = False
        for (shard, _), result in zip(heads, response["Records"], strict=True):
            if result.get("ErrorCode"):
                failed.add(shard)
            else:
                self.records_put += 1
                unknown = unknown or result.get("ShardId") not in known
        return failed, unknown
