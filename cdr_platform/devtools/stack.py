"""The devstack configured from the platform settings (the devstack itself never reads settings)."""

from __future__ import annotations

from cdr_platform.devstack.kinesis_local import StreamSpec
from cdr_platform.devstack.stack import Devstack, Profile, StackConfig
from cdr_platform.settings import PROJECT_ROOT, Settings


def stack_config(settings: Settings, profile: Profile = "embedded") -> StackConfig:
    """Endpoints, state folder, region and the usage stream, as the settings name them."""
    return StackConfig(
        state_dir=settings.devstack_dir,
        kinesis_endpoint_url=settings.kinesis_endpoint_url,
        eventstore_uri=settings.eventstore_uri.get_secret_value(),
        streams=(StreamSpec(settings.usage_stream, settings.usage_stream_shards),),
        aws_region=settings.aws_region,
        profile=profile,
        dagster_base_yaml=PROJECT_ROOT / "dagster.yaml",
    )


def devstack_for(
    settings: Settings, *, persistent: bool = True, tls: bool = False, profile: Profile = "embedded"
) -> Devstack:
    """A ``Devstack`` on the settings' endpoints and data folder (``production`` adds Postgres and S3)."""
    return Devstack(stack_config(settings, profile), persistent=persistent, tls=tls)
