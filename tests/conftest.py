"""Session fixtures: the real local endpoints, started once per test run as separate processes."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from cdr_platform.devstack.kinesis_local import kill_process, start_kinesis_local, wait_until_serving
from cdr_platform.devstack.ports import free_port, wait_for_port
from cdr_platform.devstack.stack import Devstack
from cdr_platform.devtools.shutdown import CleanStop
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.schema import ensure_schema
from cdr_platform.settings import Settings, load_settings

TIER_TIMEOUTS_S = {"unit": 120, "integration": 420, "slow": 900}
"""Per-test timeouts by tier, sized for a loaded 2-core machine (a test can set its own)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test belongs to a tier (``unit`` or ``integration``) and gets its tier's timeout."""
    untiered = [item.nodeid for item in items if not ({"unit", "integration"} & _marks(item))]
    if untiered:
        raise pytest.UsageError(f"tests without a tier marker (unit or integration): {untiered[:10]}")
    for item in items:
        if item.get_closest_marker("timeout") is None:
            marks = _marks(item)
            tier = next(name for name in ("slow", "integration", "unit") if name in marks)
            item.add_marker(pytest.mark.timeout(TIER_TIMEOUTS_S[tier]))


def _marks(item: pytest.Item) -> set[str]:
    return {mark.name for mark in item.iter_markers()}


_CLEAN_STOP = pytest.StashKey[CleanStop]()


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C or SIGTERM (a CI timeout) ends every process the run started, within seconds.

    pytest unwinds as on Ctrl-C, so fixtures tear down; meanwhile the fixtures' endpoints and the
    tests' subprocesses are ended, and if a test swallowed the signal the run exits all the same.
    """
    # A shell starts a background job with SIGINT and SIGQUIT ignored, and every process inherits
    # that: the commands the tests signal would then ignore the Ctrl-C under test (the product keeps
    # an inherited SIG_IGN on purpose). The suite runs as from a terminal however it was launched.
    for signum in (signal.SIGINT, signal.SIGQUIT):
        if signal.getsignal(signum) is signal.SIG_IGN:
            signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    config.stash[_CLEAN_STOP] = CleanStop("pytest", exit_on_stop=False).__enter__()


def pytest_unconfigure(config: pytest.Config) -> None:
    stop = config.stash.get(_CLEAN_STOP, None)
    if stop is not None:
        stop.__exit__(None, None, None)


def pytest_sessionstart(session: pytest.Session) -> None:
    """The dbt manifest the code location loads, parsed when stale (``make prepare`` does the same)."""
    from cdr_platform.defs.transform.prepare import prepare_manifest

    prepare_manifest()


def local_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for a stack of this test only: its own ports and data folder."""
    return load_settings(
        environ={},
        data_dir=data_dir,
        kinesis_endpoint_url=f"http://127.0.0.1:{free_port()}",
        eventstore_uri=f"esdb://127.0.0.1:{free_port()}?Tls=false",
        **overrides,
    )


@pytest.fixture(scope="session")
def kinesis_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A kinesis-local emulator on a free port, killed at the end of the session."""
    port = free_port()
    process = start_kinesis_local(port, tmp_path_factory.mktemp("kinesis") / "kinesis.log")
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(endpoint, process, deadline_s=60)
        yield endpoint
    finally:
        kill_process(process.pid)
        process.wait(timeout=10)


@contextmanager
def running_eventstore(log_path: Path) -> Iterator[str]:
    """The EventStoreDB-compatible server, in memory, in its own process on a free port."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cdr_platform.devstack.eventstore", "--port", str(port), "--memory"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            if not wait_for_port("127.0.0.1", port, 60):
                raise RuntimeError(f"the EventStoreDB-compatible server did not start; see {log_path}")
            yield f"esdb://127.0.0.1:{port}?Tls=false"
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def eventstore_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server shared by the session: tests use their own stream names."""
    with running_eventstore(tmp_path_factory.mktemp("eventstore") / "eventstore.log") as uri:
        yield uri


@pytest.fixture
def fresh_eventstore_uri(tmp_path: Path) -> Iterator[str]:
    """A server of this test only, for tests that read the whole of $all."""
    with running_eventstore(tmp_path / "eventstore.log") as uri:
        yield uri


@pytest.fixture(scope="session")
def production_stack() -> Iterator[Devstack]:
    """The production-shaped profile (PostgreSQL, S3), started once when a test first asks for it."""
    from tests.production_profile import production_devstack

    with production_devstack() as stack:
        yield stack


@pytest.fixture
def lake_paths(tmp_path: Path) -> tuple[str, str]:
    """Catalog and data path of a fresh DuckLake warehouse (SQLite catalog, local files)."""
    return f"sqlite:{tmp_path / 'catalog.sqlite'}", f"{tmp_path / 'files'}/"


@pytest.fixture
def lake(lake_paths: tuple[str, str]) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect_lake(*lake_paths)
    ensure_schema(con)
    yield con
    con.close()
