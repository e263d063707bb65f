"""A local S3 and Secrets Manager endpoint for the production-shaped profile: moto's server mode.

moto (a maintained AWS emulator, ``moto[server]``) serves S3 and Secrets Manager faithfully enough
for the lake's Parquet files, Dagster's compute logs and the platform's secrets. It is not used for
Kinesis (see kinesis-local). Its state is in memory: a restart empties the buckets, so the profile
recreates them on start. Clients reach it through the AWS SDK's standard endpoint variables
(``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL_SECRETS_MANAGER``) with dummy credentials.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import boto3
import botocore.exceptions

from cdr_platform.devstack.kinesis_local import DevstackError

LOCAL_ACCESS_KEY = "devstack"
LOCAL_SECRET_KEY = "devstack-secret"  # moto accepts any pair; nothing real is ever behind it


def aws_environment(endpoint: str, region: str) -> dict[str, str]:
    """What an AWS SDK client (boto3, DuckDB's S3 secret, dagster-aws) needs to use this endpoint."""
    return {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
        "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_KEY,
        "AWS_DEFAULT_REGION": region,
    }


def start_moto_server(host: str, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """moto's server in a session of its own, bound to ``host`` only."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _s3(endpoint: str, region: str) -> boto3.client:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=LOCAL_ACCESS_KEY,
        aws_secret_access_key=LOCAL_SECRET_KEY,
    )


def wait_until_serving(endpoint: str, process: subprocess.Popen[bytes], deadline_s: float, log: Path) -> None:
    """Poll until S3 answers a request (moto imports its backends before it listens)."""
    client = _s3(endpoint, "us-east-1")
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DevstackError(f"the moto server exited with code {process.returncode}; see {log}")
        try:
            client.list_buckets()
            return
        except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError):
            time.sleep(0.1)
    raise DevstackError(f"the moto server did not serve S3 at {endpoint}; see {log}")


def ensure_bucket(endpoint: str, region: str, bucket: str) -> None:
    """Create ``bucket`` unless it exists."""
    client = _s3(endpoint, region)
    try:
        client.head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError:
        options = (
            {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        client.create_bucket(Bucket=bucket, **options)
