"""The embedded local stack: kinesis-local plus the EventStoreDB-compatible server, as processes.

``Devstack`` starts both on the ports of its ``StackConfig`` endpoints, creates the configured
Kinesis streams, and records PIDs and endpoints in ``<data_dir>/devstack/state.json`` so that
``cdr-platform devstack status`` and ``down`` find them from another shell. Used as a context
manager it stops what it started, leaving no process behind. Both services listen on loopback only
(an endpoint naming another host is refused), each in a process group of its own.

The ``production`` profile adds what production runs on, locally: a PostgreSQL server (the DuckLake
catalog and Dagster's storage, ``devstack.postgres``) and an S3 and Secrets Manager endpoint
(``devstack.object_store``), and writes ``<state_dir>/production.env`` (the settings and AWS
variables that point the platform at them) and a Dagster instance using both (``devstack.dagster_instance``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, NoReturn
from urllib.parse import urlparse

from cdr_platform.devstack import object_store, postgres
from cdr_platform.devstack.dagster_instance import write_dagster_instance
from cdr_platform.devstack.kinesis_local import (
    DevstackError,
    StreamSpec,
    ensure_streams,
    kill_process,
    start_kinesis_local,
    wait_until_serving,
)
from cdr_platform.devstack.ports import free_port, is_listening, loopback_bind_host, wait_for_port
from cdr_platform.processes import pid_alive

START_DEADLINE_S = 60.0
Profile = Literal["embedded", "production"]
PROFILES: tuple[Profile, ...] = ("embedded", "production")


@dataclass(frozen=True)
class ServiceState:
    pid: int
    endpoint: str


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


@dataclass(frozen=True)
class StackConfig:
    """Where the stack listens and keeps its state; the devtools build it from the platform settings."""

    state_dir: Path
    kinesis_endpoint_url: str | None
    eventstore_uri: str
    streams: tuple[StreamSpec, ...] = ()
    aws_region: str = "us-east-1"
    profile: Profile = "embedded"
    lake_bucket: str = "cdr-lake"
    dagster_base_yaml: Path | None = None
    """The instance file the production profile's Dagster instance extends (the repository's dagster.yaml)."""


class Devstack:
    """Start, inspect and stop the local Kinesis and EventStoreDB endpoints."""

    def __init__(self, config: StackConfig, *, persistent: bool = True, tls: bool = False) -> None:
        if config.kinesis_endpoint_url is None:
            raise DevstackError(
                "CDR_KINESIS_ENDPOINT_URL is empty (real AWS): the devstack serves local endpoints"
            )
        self.config = config
        self.persistent = persistent
        self.tls = tls
        self.state_dir = config.state_dir
        self.state_file = self.state_dir / "state.json"
        self._started: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def started(self) -> tuple[str, ...]:
        """The services this object started and has not stopped yet."""
        return tuple(self._started)

    @property
    def tls_dir(self) -> Path:
        """Where the EventStoreDB-compatible server keeps its self-signed certificate (server.crt)."""
        return self.state_dir / "tls"

    # -- state ---------------------------------------------------------------------------------
    def _read_state(self) -> dict[str, ServiceState]:
        if not self.state_file.exists():
            return {}
        raw = json.loads(self.state_file.read_text())
        return {name: ServiceState(**value) for name, value in raw.items()}

    def _write_state(self, state: dict[str, ServiceState]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps({k: asdict(v) for k, v in state.items()}, indent=2))

    # -- lifecycle -----------------------------------------------------------------------------
    def up(self) -> dict[str, str]:
        """Start whatever is not already running; return the endpoints once all serve."""
        state = {name: s for name, s in self._read_state().items() if pid_alive(s.pid)}
        try:
            if "kinesis" not in state:
                state["kinesis"] = self._start_kinesis()
            if "eventstore" not in state:
                state["eventstore"] = self._start_eventstore()
            if self.config.profile == "production":
                self._start_production_services(state)
        finally:
            self._write_state(state)
        ensure_streams(
            state["kinesis"].endpoint,
            list(self.config.streams),
        )
        if self.config.profile == "production":
            self._write_production_files(state)
        return {name: s.endpoint for name, s in state.items()}

    # -- production profile ----------------------------------------------------------------------
    @property
    def env_file(self) -> Path:
        """``production.env``: ``export`` lines that point the platform at the production profile."""
        return self.state_dir / "production.env"

    @property
    def dagster_home(self) -> Path:
        """The production profile's ``DAGSTER_HOME`` (Postgres storage, compute logs on S3)."""
        return self.state_dir / "dagster-production"

    def _start_production_services(self, state: dict[str, ServiceState]) -> None:
        host = "127.0.0.1"
        if "postgres" not in state:
            port = free_port()
            log = self.state_dir / "postgres.log"
            pgdata = self.state_dir / "postgres"
            if not self.persistent:  # --ephemeral: a fresh cluster, as the other services start empty
                shutil.rmtree(pgdata, ignore_errors=True)
            process = postgres.start_postgres(pgdata, host, port, log)
            self._started["postgres"] = process
            postgres.wait_until_accepting(host, port, process, START_DEADLINE_S, log)
            state["postgres"] = ServiceState(process.pid, f"postgresql://{postgres.SUPERUSER}@{host}:{port}")
        if "s3" not in state:
            port = free_port()
            log = self.state_dir / "s3.log"
            process = object_store.start_moto_server(host, port, log)
            self._started["s3"] = process
            endpoint = f"http://{host}:{port}"
            object_store.wait_until_serving(endpoint, process, START_DEADLINE_S, log)
            state["s3"] = ServiceState(process.pid, endpoint)
            # moto keeps objects in memory: a catalog that outlived its files would point at nothing.
            pg_host, pg_port = _host_port(state["postgres"].endpoint, 5432)
            postgres.drop_database(pg_host, pg_port, "lake")
        pg_host, pg_port = _host_port(state["postgres"].endpoint, 5432)
        for name in postgres.DATABASES:
            postgres.create_database(pg_host, pg_port, name)
        object_store.ensure_bucket(state["s3"].endpoint, self.config.aws_region, self.config.lake_bucket)

    def production_environment(self) -> dict[str, str]:
        """``CDR_*``, ``AWS_*`` and ``DAGSTER_HOME`` values for the running production profile."""
        state = self._read_state()
        if "postgres" not in state or "s3" not in state:
            raise DevstackError(
                "the production profile is not running: cdr-platform devstack up --profile production"
            )
        pg_host, pg_port = _host_port(state["postgres"].endpoint, 5432)
        return {
            "CDR_LAKE_CATALOG": f"postgres:{postgres.postgres_dsn(pg_port, 'lake', pg_host)}",
            "CDR_LAKE_DATA_PATH": f"s3://{self.config.lake_bucket}/lake/",
            **object_store.aws_environment(state["s3"].endpoint, self.config.aws_region),
            "DAGSTER_HOME": str(self.dagster_home),
        }

    def _write_production_files(self, state: dict[str, ServiceState]) -> None:
        pg_host, pg_port = _host_port(state["postgres"].endpoint, 5432)
        write_dagster_instance(
            self.dagster_home,
            self.config.dagster_base_yaml,
            postgres_host=pg_host,
            postgres_port=pg_port,
            postgres_user=postgres.SUPERUSER,
            s3_endpoint=state["s3"].endpoint,
            bucket=self.config.lake_bucket,
            region=self.config.aws_region,
        )
        lines = [f"export {key}='{value}'" for key, value in self.production_environment().items()]
        self.env_file.write_text("\n".join(lines) + "\n")

    def _start_kinesis(self) -> ServiceState:
        endpoint = self.config.kinesis_endpoint_url
        assert endpoint is not None
        host, port = _host_port(endpoint, 4568)
        if is_listening(host, port):
            raise DevstackError(f"port {port} is taken by another process: set CDR_KINESIS_ENDPOINT_URL")
        persist = self.state_dir / "kinesis" if self.persistent else None
        process = start_kinesis_local(
            port,
            self.state_dir / "kinesis.log",
            persist_dir=persist,
            region=self.config.aws_region,
            host=loopback_bind_host(host),
        )
        self._started["kinesis"] = process
        wait_until_serving(endpoint, process, START_DEADLINE_S)
        return ServiceState(process.pid, endpoint)

    def _start_eventstore(self) -> ServiceState:
        host, port = _host_port(self.config.eventstore_uri, 2113)
        bind_host = loopback_bind_host(host)
        if is_listening(host, port):
            raise DevstackError(f"port {port} is taken by another process: set CDR_EVENTSTORE_URI")
        storage = ["--db", str(self.state_dir / "eventstore.sqlite")] if self.persistent else ["--memory"]
        if self.tls:
            storage += ["--tls-dir", str(self.tls_dir)]
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / "eventstore.log").open("ab") as log:
            command = [
                sys.executable,
                "-m",
                "cdr_platform.devstack.eventstore",
                "--host",
                bind_host,
                "--port",
                str(port),
            ]
            process = subprocess.Popen(
                [*command, *storage],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._started["eventstore"] = process
        if not wait_for_port(host, port, START_DEADLINE_S) or process.poll() is not None:
            raise DevstackError(
                f"the EventStoreDB-compatible server did not start on {host}:{port}; "
                f"see {self.state_dir / 'eventstore.log'}"
            )
        if self.tls:
            # esdbclient 1.0.25 wants credentials with TLS, and the CA as CDR_EVENTSTORE_ROOT_CERTIFICATES.
            return ServiceState(process.pid, f"esdb://admin:changeit@{host}:{port}?Tls=true")
        return ServiceState(process.pid, self.config.eventstore_uri)

    def down(self) -> list[str]:
        """Stop every recorded process (SIGTERM for the event store, SIGKILL for kinesis-local)."""
        stopped = []
        for name, service in self._read_state().items():
            if pid_alive(service.pid):
                _stop_service(name, service.pid)
                stopped.append(name)
        for process in self._started.values():
            process.wait(timeout=10)  # reap what this object started, so no zombie is left
        self._started.clear()
        self.state_file.unlink(missing_ok=True)
        self.env_file.unlink(missing_ok=True)
        return stopped

    def stop_started(self) -> list[str]:
        """Stop only what this object started (a stack that was already running keeps running).

        Returns the names of those services (stopped here, or found already ended by a signal); the
        state file then lists the others only.
        """
        if not self._started:
            return []
        state = self._read_state()
        stopped = list(self._started)
        for name, process in self._started.items():
            if process.poll() is None:
                _stop_service(name, process.pid)
            process.wait(timeout=10)
            if name in state and state[name].pid == process.pid:
                del state[name]
        self._started.clear()
        if state:
            self._write_state(state)
        else:
            self.state_file.unlink(missing_ok=True)
        return stopped

    def wait_while_serving(self, poll_s: float = 1.0) -> NoReturn:
        """Block while the services this object started run; raise ``DevstackError`` once one exits.

        A foreground stack waits here until a signal (see ``devtools.shutdown.CleanStop``) interrupts it.
        """
        if not self._started:
            raise DevstackError("this Devstack started no service: nothing to serve in the foreground")
        while True:
            for name, process in self._started.items():
                try:
                    code = process.wait(timeout=poll_s)
                except subprocess.TimeoutExpired:
                    continue
                raise DevstackError(f"{name} exited with code {code}; see {self.state_dir / f'{name}.log'}")

    def status(self) -> dict[str, str]:
        """Endpoints of the services that are running and accepting connections."""
        live = {}
        for name, service in self._read_state().items():
            host, port = _host_port(service.endpoint, 0)
            if pid_alive(service.pid) and is_listening(host, port):
                live[name] = service.endpoint
        return live

    def __enter__(self) -> dict[str, str]:
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()


def _stop_service(name: str, pid: int) -> None:
    """kinesis-local ignores SIGTERM (SIGKILL); PostgreSQL's fast shutdown is SIGINT; the rest SIGTERM."""
    if name == "kinesis":
        kill_process(pid)
    else:
        _terminate(pid, signal.SIGINT if name == "postgres" else signal.SIGTERM)


def _terminate(pid: int, sig: signal.Signals = signal.SIGTERM, grace_s: float = 5.0) -> None:
    """Signal a process group, then SIGKILL it if it has not exited within the grace period."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    kill_process(pid)
