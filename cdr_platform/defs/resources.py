"""Dagster resources, configured from the platform settings.

Secrets (the EventStoreDB URI holds a password in production) are marked secret, so the Dagster
UI masks them; nothing here logs them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
from dagster import ConfigurableResource
from esdbclient import EventStoreDBClient
from pydantic import Field

from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.schema import ensure_schema
from cdr_platform.settings import Settings, redacted_uri
from cdr_platform.sources.eventstore_reader import connect_eventstore
from cdr_platform.sources.kinesis_client import kinesis_client

SECRET: dict[str, Any] = {"dagster__is_secret": True}
"""Field marker that makes the Dagster UI mask a resource value."""


class KinesisResource(ConfigurableResource):
    """boto3 Kinesis; an empty endpoint means real AWS with the default credential chain."""

    region: str
    endpoint_url: str | None = None
    usage_stream: str
    shard_groups: int = 1
    """Concurrent landing runs, each owning a slice of the hash-key space (``landing_shard_groups``)."""

    def get_client(self) -> Any:
        return kinesis_client(self.region, self.endpoint_url)

    def probe_client(self) -> Any:
        """A client for sensor probes: few attempts and short timeouts, so a tick stays short."""
        return kinesis_client(
            self.region, self.endpoint_url, max_attempts=2, connect_timeout_s=3, read_timeout_s=5
        )

    @property
    def endpoint_name(self) -> str:
        """How messages name this endpoint."""
        return f"Kinesis stream {self.usage_stream!r} at {self.endpoint_url or f'AWS {self.region}'}"


class EventStoreResource(ConfigurableResource):
    """esdbclient against a single node, a cluster (``esdb+discover://``) or the local server."""

    uri: str = Field(
        description="EventStoreDB connection string (may hold credentials).", json_schema_extra=SECRET
    )
    root_certificates: str | None = Field(default=None, description="Path of the cluster's CA certificate.")
    member_event_types: list[str]
    settle_seconds: int = 120
    """Reconciliation judges only events recorded longer ago than this (newer ones may be in flight)."""

    @property
    def endpoint_name(self) -> str:
        """How messages name this endpoint (credentials redacted)."""
        return f"EventStoreDB at {redacted_uri(self.uri)}"

    @contextmanager
    def client(self) -> Iterator[EventStoreDBClient]:
        certificate = Path(self.root_certificates).read_text() if self.root_certificates else None
        client = connect_eventstore(self.uri, certificate)
        try:
            yield client
        finally:
            client.close()


class RelayResource(ConfigurableResource):
    """Where the relay keeps its checkpoint (read only, never written here) and how far it may trail $all."""

    checkpoint_path: str
    max_lag_seconds: int = 300


class LakeResource(ConfigurableResource):
    """The DuckLake warehouse: SQLite catalog and local files locally, Postgres and S3 in production."""

    catalog: str
    data_path: str

    def exists(self) -> bool:
        """False only when a local SQLite catalog has not been created yet (nothing has landed)."""
        return not self.catalog.startswith("sqlite:") or Path(self.catalog.removeprefix("sqlite:")).exists()

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        con = connect_lake(self.catalog, self.data_path, read_only=read_only)
        try:
            if not read_only:
                ensure_schema(con)
            yield con
        finally:
            con.close()

    @contextmanager
    def dbt_environment(self, full_tests: bool = False) -> Iterator[None]:
        """This lake's location where profiles.yml and the dbt plugin read it, for the ``with`` block,
        and which rows dbt's data tests read: the recent window, or every row with ``full_tests``
        (``DBT_CDR_TESTS``, see ``dbt_project/macros/test_window.sql``).

        dbt runs as a subprocess that inherits the environment; the previous values come back on
        exit, so an in-process run (the demo, tests) leaves the environment as it found it.
        """
        values = {
            "CDR_LAKE_CATALOG": self.catalog,
            "CDR_LAKE_DATA_PATH": self.data_path,
            "DBT_CDR_TESTS": "full" if full_tests else "window",
        }
        previous = {key: os.environ.get(key) for key in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def build_resources(settings: Settings) -> dict[str, Any]:
    """Every settings-backed resource the definitions use (the ``dbt`` resource is transform's own)."""
    certificates = settings.eventstore_root_certificates
    return {
        "kinesis": KinesisResource(
            region=settings.aws_region,
            endpoint_url=settings.kinesis_endpoint_url,
            usage_stream=settings.usage_stream,
            shard_groups=settings.landing_shard_groups,
        ),
        "eventstore": EventStoreResource(
            uri=settings.eventstore_uri.get_secret_value(),
            root_certificates=str(certificates) if certificates else None,
            member_event_types=list(settings.member_event_types),
            settle_seconds=settings.reconcile_settle_seconds,
        ),
        "lake": LakeResource(
            catalog=settings.resolved_lake_catalog, data_path=settings.resolved_lake_data_path
        ),
        "relay": RelayResource(
            checkpoint_path=str(settings.relay_checkpoint_path),
            max_lag_seconds=settings.relay_max_lag_seconds,
        ),
    }
