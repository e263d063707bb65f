"""The production-shaped profile in tests: one Devstack with PostgreSQL and S3 per session, a lake per test.

Each test gets its own catalog database and its own S3 prefix, and the AWS SDK variables that point
boto3, DuckDB's S3 secret and dagster-aws at the local endpoint (set with ``monkeypatch``, so the
process environment is restored after the test).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from cdr_platform.devstack import postgres
from cdr_platform.devstack.ports import free_port
from cdr_platform.devstack.stack import Devstack, StackConfig
from cdr_platform.settings import PROJECT_ROOT


@dataclass(frozen=True)
class ProductionLake:
    """A Postgres-catalog, S3-data-path lake of one test."""

    catalog: str
    data_path: str
    environment: dict[str, str]


@contextmanager
def production_devstack() -> Iterator[Devstack]:
    """A production-profile Devstack in a folder PostgreSQL's own user can reach (not pytest's 0700 tmp)."""
    state_dir = Path(tempfile.mkdtemp(prefix="cdr-production-"))
    state_dir.chmod(0o755)
    config = StackConfig(
        state_dir=state_dir / "devstack",
        kinesis_endpoint_url=f"http://127.0.0.1:{free_port()}",
        eventstore_uri=f"esdb://127.0.0.1:{free_port()}?Tls=false",
        profile="production",
        dagster_base_yaml=PROJECT_ROOT / "dagster.yaml",
    )
    stack = Devstack(config, persistent=False)
    try:
        with stack:
            yield stack
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def new_production_lake(stack: Devstack, monkeypatch: pytest.MonkeyPatch) -> ProductionLake:
    """A fresh catalog database and S3 prefix; the test's environment points at them."""
    name = f"lake_{uuid.uuid4().hex[:10]}"
    environment = stack.production_environment()
    dsn = environment["CDR_LAKE_CATALOG"].removeprefix("postgres:")
    parts = dict(part.split("=", 1) for part in dsn.split())
    postgres.create_database(parts["host"], int(parts["port"]), name)
    environment["CDR_LAKE_CATALOG"] = f"postgres:{dsn.replace('dbname=lake', f'dbname={name}')}"
    environment["CDR_LAKE_DATA_PATH"] = f"s3://{stack.config.lake_bucket}/{name}/"
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    return ProductionLake(environment["CDR_LAKE_CATALOG"], environment["CDR_LAKE_DATA_PATH"], environment)
