"""A boto3 Kinesis client that works against kinesis-local and real AWS unchanged."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def kinesis_client(
    region: str,
    endpoint_url: str | None = None,
    max_attempts: int = 5,
    connect_timeout_s: float = 10,
    read_timeout_s: float = 30,
) -> Any:
    """Build a Kinesis client.

    With no endpoint it uses AWS's default credential chain (environment, profile, instance or
    task role): keys never live in files of this project. A loopback endpoint gets dummy
    credentials, since the emulator accepts any signature.
    """
    kwargs: dict[str, Any] = {
        "region_name": region,
        # botocore's 60 s connect timeout would let an unreachable endpoint hold each attempt for a
        # minute; Kinesis answers a connect in milliseconds, so 10 s only ever cuts real outages short.
        "config": Config(
            retries={"max_attempts": max_attempts, "mode": "adaptive"},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
        ),
    }
    if endpoint_url is not None:
        kwargs["endpoint_url"] = endpoint_url
        if urlparse(endpoint_url).hostname in LOOPBACK_HOSTS:
            kwargs.update(aws_access_key_id="000000000000", aws_secret_access_key="local")
    return boto3.client("kinesis", **kwargs)
