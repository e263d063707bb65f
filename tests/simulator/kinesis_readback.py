"""Read everything on a Kinesis stream back, shard lineage by shard lineage, as user records
(relay heartbeats left out)."""

from __future__ import annotations

from typing import Any

from cdr_platform.events.framing import UserRecord
from cdr_platform.sources.kinesis_reader import ShardPosition, list_shards, read_shard_page, readable_shards
from cdr_platform.sources.relay_heartbeat import event_records


def read_user_records(client: Any, stream: str) -> list[tuple[str, UserRecord]]:
    """(shard id, user record) for every record, parents before children, each shard in order."""
    shards = list_shards(client, stream)
    positions: dict[str, ShardPosition] = {}
    out: list[tuple[str, UserRecord]] = []
    while ready := readable_shards(shards, positions):
        for shard in ready:
            after = positions.get(shard.shard_id, ShardPosition(None, False)).sequence_number
            page = read_shard_page(client, stream, shard.shard_id, after)
            for record in page.records:
                out += [(shard.shard_id, user) for user in event_records(record.partition_key, record.data)]
            # an open shard with nothing more to read is finished for this read-back
            positions[shard.shard_id] = ShardPosition(page.last_sequence, page.ended or not page.records)
    return out
