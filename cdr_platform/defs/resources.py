"""Dagster resources, configured from the platform settings."""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableResource

from cdr_platform.settings import Settings
from cdr_platform.sources.kinesis_client import kinesis_client


class KinesisResource(ConfigurableResource):
    """boto3 Kinesis; an empty endpoint means real AWS with the default credential chain."""

    region: str
    endpoint_url: str | None = None
    usage_stream: str

    def get_client(self) -> Any:
        return kinesis_client(self.region, self.endpoint_url)


def build_resources(settings: Settings) -> dict[str, Any]:
    """Every resource the definitions use, from one settings object."""
    return {
        "kinesis": KinesisResource(
            region=settings.aws_region,
            endpoint_url=settings.kinesis_endpoint_url,
            usage_stream=settings.usage_stream,
        ),
    }
