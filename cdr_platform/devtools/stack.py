"""The devstack configured from the platform settings (the devstack itself never reads settings)."""

from __future__ import annotations

from cdr_platform.devstack.kinesis_local import StreamSpec
from cdr_platform.devstack.stack import Devstack, StackConfig
from cdr_platform.settings import Settings


def stack_config(settings: Settings) -> StackConfig:
    """Endpoints, state folder, region and the usage stream, as the settings name them."""
    return StackConfig(
        state_dir=settings.devstack_dir,
        kinesis_endpoint_url=settings.kinesis_endpoint_url,
        eventstore_uri=settings.eventstore_uri.get_secret_value(),
        streams=(StreamSpec(settings.usage_stream, settings.usage_stream_shards),),
        aws_region=settings.aws_region,
    )


def devstack_for(settings: Settings, *, persistent: bool = True, tls: bool = False) -> Devstack:
    """A ``Devstack`` on the settings' endpoints and data folder."""
    return Devstack(stack_config(settings), persistent=persistent, tls=tls)
