"""Fixtures for the dev EventStoreDB server tests: one in-memory server for the whole session.

Tests talk to it with the real esdbclient over loopback and use their own unique stream names.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import grpc
import pytest
from esdbclient import EventStoreDBClient

from cdr_platform.devstack.eventstore.server import EventStoreServer


@pytest.fixture(scope="session")
def esdb_server() -> Iterator[EventStoreServer]:
    """An in-memory server on a free port."""
    with EventStoreServer(host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture(scope="session")
def client(esdb_server: EventStoreServer) -> Iterator[EventStoreDBClient]:
    """A session-wide esdbclient connected to the server."""
    esdb = EventStoreDBClient(uri=esdb_server.uri)
    yield esdb
    esdb.close()


@pytest.fixture(scope="session")
def channel(esdb_server: EventStoreServer) -> Iterator[grpc.Channel]:
    """A raw gRPC channel, for requests esdbclient would never send."""
    with grpc.insecure_channel(f"127.0.0.1:{esdb_server.port}") as raw:
        yield raw


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Make a stream or group name no other test uses."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:12]}"
