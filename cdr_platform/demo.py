"""The main job, end to end on the local stack: what ``make demo`` runs."""

from __future__ import annotations

import time
import uuid

from esdbclient import EventStoreDBClient, NewEvent, StreamState

from cdr_platform.settings import Settings
from cdr_platform.sources.kinesis_client import kinesis_client


def run_demo(settings: Settings) -> int:
    """Start the local stack, prove both endpoints work end to end, and stop it again."""
    from cdr_platform.devstack.stack import Devstack  # the demo runs the devstack; product code does not

    started = time.monotonic()
    with Devstack(settings, persistent=False) as endpoints:
        print(f"devstack up: {endpoints}")
        esdb = EventStoreDBClient(uri=endpoints["eventstore"])
        stream = f"demo-{uuid.uuid4()}"
        esdb.append_to_stream(
            stream, current_version=StreamState.NO_STREAM, events=[NewEvent("smoke", b"{}")]
        )
        print(f"eventstore: appended and read back {len(list(esdb.get_stream(stream)))} event")
        esdb.close()
        kinesis = kinesis_client(settings.aws_region, endpoints["kinesis"])
        put = kinesis.put_record(StreamName=settings.usage_stream, Data=b"smoke", PartitionKey="demo")
        print(f"kinesis: put a record on {settings.usage_stream} ({put['ShardId']})")
    print(f"demo finished in {time.monotonic() - started:.1f}s")
    return 0
