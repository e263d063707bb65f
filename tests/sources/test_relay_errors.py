"""Which failures the relay retries and which end it, decided without endpoints.

The exceptions are built as botocore and esdbclient raise them; nothing is patched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from esdbclient import EventStoreDBClient
from esdbclient.exceptions import AccessDeniedError, DeadlineExceeded, ServiceUnavailable, SSLError

from cdr_platform.devstack.kinesis_local import local_kinesis_client
from cdr_platform.devstack.ports import free_port
from cdr_platform.sources.kinesis_publisher import KinesisPublishError
from cdr_platform.sources.relay import (
    ENDPOINT_ERRORS,
    Relay,
    RelayConfig,
    RelayConfigError,
    SubscriptionEnded,
    describe_failure,
    is_configuration_error,
)

pytestmark = pytest.mark.unit


def _client_error(code: str, operation: str = "PutRecords") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} happened"}}, operation)


def _wrapped(cause: BaseException) -> KinesisPublishError:
    try:
        raise KinesisPublishError(f"put_records to s failed: {cause}") from cause
    except KinesisPublishError as exc:
        return exc


RETRIED = [
    EndpointConnectionError(endpoint_url="http://127.0.0.1:4568/"),
    ConnectionClosedError(endpoint_url="http://127.0.0.1:4568/"),
    ReadTimeoutError(endpoint_url="http://127.0.0.1:4568/"),
    _client_error("ResourceNotFoundException", "ListShards"),
    _client_error("ProvisionedThroughputExceededException"),
    _client_error("InternalFailure"),
    _wrapped(_client_error("ServiceUnavailable")),
    KinesisPublishError("Kinesis kept refusing records for shards ['s-0'] of s after 10 attempts"),
    ServiceUnavailable("Stream removed (Socket closed)"),
    DeadlineExceeded(),
    SubscriptionEnded("the $all subscription ended after position 42"),
]
CONFIGURATION = [
    NoCredentialsError(),
    _client_error("AccessDeniedException"),
    _client_error("UnrecognizedClientException", "ListShards"),
    _wrapped(_client_error("InvalidSignatureException")),
    _client_error("ValidationException"),
    AccessDeniedError(),
    SSLError("SSL_ERROR_SSL: certificate verify failed"),
]


@pytest.mark.parametrize("error", RETRIED, ids=lambda e: type(e).__name__)
def test_endpoint_hiccups_are_retried(error: BaseException) -> None:
    assert isinstance(error, ENDPOINT_ERRORS)
    assert not is_configuration_error(error)


@pytest.mark.parametrize("error", CONFIGURATION, ids=lambda e: type(e).__name__)
def test_configuration_errors_are_not_retried(error: BaseException) -> None:
    assert is_configuration_error(error)


def test_the_retry_reason_names_the_endpoint_on_one_line() -> None:
    kinesis = describe_failure(EndpointConnectionError(endpoint_url="http://127.0.0.1:4568/"))
    assert kinesis.startswith("Kinesis: EndpointConnectionError: ")
    assert "127.0.0.1:4568" in kinesis
    eventstore = describe_failure(ServiceUnavailable("Stream removed\n(Socket closed)"))
    assert eventstore == "EventStoreDB: ServiceUnavailable: Stream removed (Socket closed)"


def test_a_relay_is_built_without_reaching_any_endpoint(tmp_path: Path) -> None:
    """Nothing listens on either port: building the relay must not need them (it may start in an outage)."""
    eventstore = EventStoreDBClient(f"esdb://127.0.0.1:{free_port()}?Tls=false")
    kinesis = local_kinesis_client(f"http://127.0.0.1:{free_port()}")
    relay = Relay(eventstore, kinesis, RelayConfig("s", tmp_path / "checkpoint.json"))
    assert relay.state.commit_position is None


def test_a_malformed_checkpoint_is_a_configuration_error(tmp_path: Path) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    checkpoint.write_text("{not json")
    eventstore = EventStoreDBClient(f"esdb://127.0.0.1:{free_port()}?Tls=false")
    with pytest.raises(RelayConfigError, match=r"checkpoint .* is unreadable"):
        Relay(eventstore, local_kinesis_client("http://127.0.0.1:1"), RelayConfig("s", checkpoint))


def test_retry_settings_are_checked() -> None:
    with pytest.raises(RelayConfigError, match="retry_base_s"):
        RelayConfig("s", Path("c.json"), retry_base_s=5.0, retry_cap_s=1.0)


def test_the_cli_exits_with_one_line_on_a_configuration_error(tmp_path: Path) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    checkpoint.write_text('{"commit_position": "not", "surprise": 1}')
    command = [
        sys.executable, "-m", "cdr_platform.cli", "relay", "--quiet", "--checkpoint", str(checkpoint),
        "--eventstore-uri", f"esdb://127.0.0.1:{free_port()}?Tls=false",
        "--kinesis-endpoint-url", f"http://127.0.0.1:{free_port()}", "--stream", "s",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("relay configuration error: checkpoint ")
    assert "fix or delete it" in lines[0]
