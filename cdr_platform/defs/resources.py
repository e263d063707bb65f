"""Dagster resources, configured from the platform settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
from dagster import ConfigurableResource
from esdbclient import EventStoreDBClient

from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.schema import ensure_schema
from cdr_platform.settings import Settings
from cdr_platform.sources.eventstore_reader import connect_eventstore
from cdr_platform.sources.kinesis_client import kinesis_client


class KinesisResource(ConfigurableResource):
    """boto3 Kinesis; an empty endpoint means real AWS with the default credential chain."""

    region: str
    endpoint_url: str | None = None
    usage_stream: str

    def get_client(self) -> Any:
        return kinesis_client(self.region, self.endpoint_url)


class EventStoreResource(ConfigurableResource):
    """esdbclient against a single node, a cluster (``esdb+discover://``) or the local server."""

    uri: str
    root_certificates: str | None = None
    member_event_types: list[str]
    settle_seconds: int = 120
    """Reconciliation judges only events recorded longer ago than this (newer ones may be in flight)."""

    @contextmanager
    def client(self) -> Iterator[EventStoreDBClient]:
        client = connect_eventstore(self.uri, self.root_certificates)
        try:
            yield client
        finally:
            client.close()


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


def build_resources(settings: Settings) -> dict[str, Any]:
    """Every resource the definitions use, from one settings object."""
    certificates = settings.eventstore_root_certificates
    return {
        "kinesis": KinesisResource(
            region=settings.aws_region,
            endpoint_url=settings.kinesis_endpoint_url,
            usage_stream=settings.usage_stream,
        ),
        "eventstore": EventStoreResource(
            uri=settings.eventstore_uri,
            root_certificates=certificates.read_text() if certificates else None,
            member_event_types=list(settings.member_event_types),
            settle_seconds=settings.reconcile_settle_seconds,
        ),
        "lake": LakeResource(
            catalog=settings.resolved_lake_catalog, data_path=settings.resolved_lake_data_path
        ),
    }
