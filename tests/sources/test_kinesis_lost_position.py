"""A landed position the Kinesis endpoint no longer knows restarts the shard from its beginning.

kinesis-local killed between two saves of its state comes back without records it had acknowledged:
the landed checkpoint then names a sequence number the shard never issued, and GetShardIterator
refuses it. The reader must not stop there (seen after a restart of ``make dev``: every sensor tick
skipped the stream); it reads the shard again from TRIM_HORIZON, which landing dedupes.
"""

from __future__ import annotations

import time
import uuid

import pytest

from cdr_platform.devstack.kinesis_local import local_kinesis_client
from cdr_platform.sources.history_export import ensure_stream
from cdr_platform.sources.kinesis_reader import ShardPosition, list_shards, read_shard_page, shard_has_news

pytestmark = pytest.mark.integration


def _put(client, stream: str, count: int, tag: str) -> str:
    last = ""
    for index in range(count):
        last = client.put_record(StreamName=stream, Data=f"{tag}-{index}".encode(), PartitionKey="k")[
            "SequenceNumber"
        ]
    return last


def test_a_position_the_endpoint_lost_restarts_the_shard_from_trim_horizon(kinesis_endpoint: str) -> None:
    client = local_kinesis_client(kinesis_endpoint)
    stream = f"lost-{uuid.uuid4().hex[:8]}"
    ensure_stream(client, stream, 1)
    landed = _put(client, stream, 5, "before")  # what landing had checkpointed
    client.delete_stream(StreamName=stream)  # the endpoint loses the stream's records
    deadline = time.monotonic() + 60
    while stream in client.list_streams()["StreamNames"] and time.monotonic() < deadline:
        time.sleep(0.2)
    ensure_stream(client, stream, 1)
    _put(client, stream, 3, "after")
    (shard,) = list_shards(client, stream)

    page = read_shard_page(client, stream, shard.shard_id, landed)

    assert [r.data for r in page.records] == [b"after-0", b"after-1", b"after-2"]
    assert shard_has_news(client, stream, shard, ShardPosition(landed, ended=False))  # the sensor's probe too
