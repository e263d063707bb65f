"""An S3 endpoint that enforces IAM (moto's server with ``INITIAL_NO_AUTH_ACTION_COUNT``), for tests of
read-only credentials: a platform user that may do anything, and a reader limited to one prefix.

The devstack's own moto accepts any key (many tests share it), so the tests that need refusals start
this one beside it. moto lets the first ``SETUP_ACTIONS`` requests through unauthenticated (the bucket
and the two users are made with them) and checks every later one against the users' policies.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3

from cdr_platform.devstack.ports import free_port

SETUP_ACTIONS = 7  # create_bucket, then create_user, put_user_policy, create_access_key per user
REGION = "us-east-1"


@dataclass(frozen=True)
class Keys:
    access_key: str
    secret_key: str

    def environment(self, endpoint: str) -> dict[str, str]:
        """The AWS SDK variables that make boto3 (and the lake's DuckDB S3 secret) use these keys."""
        return {
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
        }


@dataclass(frozen=True)
class IamObjectStore:
    endpoint: str
    bucket: str
    platform: Keys
    reader: Keys


def _user(iam: object, name: str, statement: dict[str, object]) -> Keys:
    iam.create_user(UserName=name)  # type: ignore[attr-defined]
    policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=policy)  # type: ignore[attr-defined]
    key = iam.create_access_key(UserName=name)["AccessKey"]  # type: ignore[attr-defined]
    return Keys(key["AccessKeyId"], key["SecretAccessKey"])


@contextmanager
def iam_object_store(bucket: str, readable_prefix: str) -> Iterator[IamObjectStore]:
    """moto enforcing IAM, with ``bucket``, a platform user, and a reader of ``readable_prefix`` only
    (``s3:GetObject`` on ``<bucket>/<readable_prefix>*``: no listing, no other key, no write)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_ACTIONS)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:  # a TCP probe: an HTTP request would spend one of the unauthenticated actions
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "moto did not start"
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        anonymous = {"endpoint_url": endpoint, "region_name": REGION}
        anonymous |= {"aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
        boto3.client("s3", **anonymous).create_bucket(Bucket=bucket)
        iam = boto3.client("iam", **anonymous)
        platform = _user(iam, "platform", {"Effect": "Allow", "Action": "*", "Resource": "*"})
        reader = _user(
            iam,
            "analyst",
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/{readable_prefix}*"],
            },
        )
        yield IamObjectStore(endpoint, bucket, platform, reader)
    finally:
        process.kill()
        process.wait()
