"""The devstack lifecycle: up, use both endpoints through their real clients, down, nothing left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from esdbclient import EventStoreDBClient, NewEvent, StreamState

from cdr_platform.devtools.stack import devstack_for
from cdr_platform.processes import pid_alive
from cdr_platform.sources.kinesis_client import kinesis_client
from tests.conftest import local_settings

pytestmark = pytest.mark.integration


def _read_all_records(client, stream: str) -> list[bytes]:
    data = []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        data += [r["Data"] for r in client.get_records(ShardIterator=iterator, Limit=1000)["Records"]]
    return data


def test_up_serves_kinesis_and_eventstore_then_down_leaves_nothing(tmp_path: Path) -> None:
    settings = local_settings(tmp_path)
    stack = devstack_for(settings, persistent=False)
    with stack as endpoints:
        pids = [json.loads(stack.state_file.read_text())[name]["pid"] for name in ("kinesis", "eventstore")]
        assert set(stack.status()) == {"kinesis", "eventstore"}

        kinesis = kinesis_client(settings.aws_region, endpoints["kinesis"])
        kinesis.create_stream(StreamName="roundtrip", ShardCount=1)
        kinesis.get_waiter("stream_exists").wait(StreamName="roundtrip", WaiterConfig={"Delay": 0.2})
        kinesis.put_record(StreamName="roundtrip", Data=b"hello", PartitionKey="m1")
        assert _read_all_records(kinesis, "roundtrip") == [b"hello"]
        assert settings.usage_stream in kinesis.list_streams()["StreamNames"]

        esdb = EventStoreDBClient(uri=endpoints["eventstore"])
        stream = f"smoke-{uuid.uuid4()}"
        esdb.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=[NewEvent("t", b"{}")])
        assert [e.type for e in esdb.get_stream(stream)] == ["t"]
        esdb.close()
    assert not any(pid_alive(pid) for pid in pids)
    assert stack.status() == {}


def test_cli_up_status_down(tmp_path: Path) -> None:
    settings = local_settings(tmp_path)
    env = {
        **os.environ,
        "CDR_DATA_DIR": str(tmp_path),
        "CDR_KINESIS_ENDPOINT_URL": settings.kinesis_endpoint_url or "",
        "CDR_EVENTSTORE_URI": settings.eventstore_uri.get_secret_value(),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cdr_platform.cli", "devstack", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    try:
        assert cli("up", "--ephemeral").returncode == 0
        status = cli("status", "--json")
        assert json.loads(status.stdout) == {
            "kinesis": settings.kinesis_endpoint_url,
            "eventstore": settings.eventstore_uri.get_secret_value(),
        }
        pids = [v["pid"] for v in json.loads((tmp_path / "devstack" / "state.json").read_text()).values()]
    finally:
        down = cli("down")
    assert down.returncode == 0, down.stderr
    assert not any(pid_alive(pid) for pid in pids)
    assert json.loads(cli("status", "--json").stdout) == {}


def test_missing_node_gives_one_clear_message(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": "/nonexistent", "CDR_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "cdr_platform.cli", "devstack", "up", "--ephemeral"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Node.js is missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_eventstore_over_tls_with_a_generated_certificate(tmp_path: Path) -> None:
    settings = local_settings(tmp_path)
    stack = devstack_for(settings, persistent=False, tls=True)
    with stack as endpoints:
        assert "Tls=true" in endpoints["eventstore"]
        certificate = (stack.tls_dir / "server.crt").read_text()
        esdb = EventStoreDBClient(uri=endpoints["eventstore"], root_certificates=certificate)
        stream = f"tls-{uuid.uuid4()}"
        esdb.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=[NewEvent("t", b"{}")])
        assert [e.type for e in esdb.get_stream(stream)] == ["t"]
        esdb.close()
