"""Session fixtures: one real local stack (kinesis-local + EventStoreDB-compatible server) per run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cdr_platform.devstack.ports import free_port
from cdr_platform.devstack.stack import Devstack
from cdr_platform.settings import Settings, load_settings


def local_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for a stack of this test session only: its own ports and data folder."""
    return load_settings(
        environ={},
        data_dir=data_dir,
        kinesis_endpoint_url=f"http://127.0.0.1:{free_port()}",
        eventstore_uri=f"esdb://127.0.0.1:{free_port()}?Tls=false",
        **overrides,
    )


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return local_settings(tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="session")
def local_stack(stack_settings: Settings) -> Iterator[dict[str, str]]:
    """Endpoints of a running ephemeral devstack, stopped at the end of the session."""
    with Devstack(stack_settings, persistent=False) as endpoints:
        yield endpoints
