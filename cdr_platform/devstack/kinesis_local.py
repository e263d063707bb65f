"""Run the npm ``kinesis-local`` emulator (kinesis-mock, the engine LocalStack uses) on loopback.

Facts this module is built around, measured here: kinesis-local crashes outside its own folder
unless ``KINESIS_MOCK_CERT_PATH`` names its bundled certificate, it ignores SIGTERM (so it is
stopped with SIGKILL by PID), and it can persist its data to a JSON file every few seconds. It has
no host setting and listens on every interface, so it runs with ``bind_loopback.cjs`` preloaded,
which binds its plain and TLS ports to the loopback host instead.
moto is deliberately not used: it loses records under concurrent writers and keeps writing to
closed shards after a reshard.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cdr_platform.devstack.ports import free_port, loopback_bind_host
from cdr_platform.errors import PlatformError

NPM_DIR = Path(__file__).resolve().parent / "npm"
KINESIS_LOCAL_MAIN = NPM_DIR / "node_modules" / "kinesis-local" / "main.js"
BIND_LOOPBACK_PRELOAD = Path(__file__).resolve().parent / "bind_loopback.cjs"
LOCAL_CREDENTIALS = {"aws_access_key_id": "000000000000", "aws_secret_access_key": "local"}


class DevstackError(PlatformError):
    """The local stack could not be started or reached; the message says what to do."""


@dataclass(frozen=True)
class StreamSpec:
    name: str
    shards: int


def local_kinesis_client(endpoint_url: str, region: str = "us-east-1"):
    """A boto3 Kinesis client for the emulator (dummy credentials, few retries, short timeouts)."""
    return boto3.client(
        "kinesis",
        endpoint_url=endpoint_url,
        region_name=region,
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=10),
        **LOCAL_CREDENTIALS,
    )


def require_node() -> str:
    """Path of ``node``, or a clear error saying what to install."""
    node = shutil.which("node")
    if node is None:
        raise DevstackError(
            "Node.js is missing: install Node.js 20 or newer (with npm), then run `make dev`."
        )
    if not KINESIS_LOCAL_MAIN.exists():
        raise DevstackError(
            f"kinesis-local is not installed in {NPM_DIR}: run `make install` "
            f"(it runs `npm ci --prefix {NPM_DIR}` from the committed package-lock)."
        )
    return node


def start_kinesis_local(
    port: int,
    log_path: Path,
    persist_dir: Path | None = None,
    region: str = "us-east-1",
    host: str = "127.0.0.1",
) -> subprocess.Popen[bytes]:
    """Start the emulator serving plain HTTP on ``host:port``; returns the process (not yet ready).

    ``host`` must be a loopback address: both of its ports (plain and TLS) listen there only. The
    process leads a process group of its own; ``kill_process(pid)`` ends it.
    """
    node = require_node()
    env = {
        **os.environ,
        "CDR_DEVSTACK_BIND_HOST": loopback_bind_host(host),
        "KINESIS_MOCK_CERT_PATH": str(KINESIS_LOCAL_MAIN.parent / "server.json"),
        "KINESIS_MOCK_PLAIN_PORT": str(port),
        "KINESIS_MOCK_TLS_PORT": str(free_port()),
        "AWS_REGION": region,
        "LOG_LEVEL": "WARN",
        "CREATE_STREAM_DURATION": "200ms",
        "SPLIT_SHARD_DURATION": "200ms",
        "MERGE_SHARDS_DURATION": "200ms",
        "UPDATE_SHARD_COUNT_DURATION": "200ms",
        "SHOULD_PERSIST_DATA": "true" if persist_dir else "false",
        # AWS's default account quota in the large regions; the emulator's own (50 shards in all) is
        # reached by a test session's streams, which are never deleted.
        "SHARD_LIMIT": "500",
    }
    if persist_dir:
        persist_dir.mkdir(parents=True, exist_ok=True)
        env.update(
            {"PERSIST_PATH": str(persist_dir), "PERSIST_INTERVAL": "1s", "LOAD_DATA_IF_EXISTS": "true"}
        )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [node, "--require", str(BIND_LOOPBACK_PRELOAD), str(KINESIS_LOCAL_MAIN)],
            cwd=str(KINESIS_LOCAL_MAIN.parent),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until_serving(endpoint_url: str, process: subprocess.Popen[bytes] | None, deadline_s: float) -> None:
    """Poll ListStreams until the emulator answers, or fail with the reason."""
    client = local_kinesis_client(endpoint_url)
    deadline = time.monotonic() + deadline_s
    while True:
        if process is not None and process.poll() is not None:
            raise DevstackError(f"kinesis-local exited with code {process.returncode} before serving")
        try:
            client.list_streams(Limit=1)
            return
        except (BotoCoreError, ClientError) as exc:
            if time.monotonic() > deadline:
                raise DevstackError(f"kinesis-local at {endpoint_url} did not answer: {exc}") from exc
            time.sleep(0.1)


def ensure_streams(endpoint_url: str, streams: list[StreamSpec], deadline_s: float = 30.0) -> None:
    """Create each stream if missing and wait until every one is ACTIVE."""
    client = local_kinesis_client(endpoint_url)
    existing = set(client.list_streams()["StreamNames"])
    for stream in streams:
        if stream.name not in existing:
            client.create_stream(StreamName=stream.name, ShardCount=stream.shards)
    deadline = time.monotonic() + deadline_s
    for stream in streams:
        while True:
            status = client.describe_stream_summary(StreamName=stream.name)["StreamDescriptionSummary"]
            if status["StreamStatus"] == "ACTIVE":
                break
            if time.monotonic() > deadline:
                raise DevstackError(
                    f"stream {stream.name} still {status['StreamStatus']} after {deadline_s}s"
                )
            time.sleep(0.1)


def kill_process(pid: int) -> None:
    """SIGKILL a process group (kinesis-local ignores SIGTERM); a missing process is fine."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, signal.SIGKILL)
