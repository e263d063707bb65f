"""``dagster dev`` on this repository's workspace, driven through its GraphQL API (bench and tests).

``DagsterDev`` starts the webserver, the daemon and the code server with a ``DAGSTER_HOME`` of its
own (this repository's ``dagster.yaml`` copied in), waits until the code location has loaded, and
stops the whole tree on exit. ``graphql`` posts one query; ``launch_run`` submits a job run as the
UI's Launch button does (through the run queue, so the daemon starts it as it starts a sensor's run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from cdr_platform.devstack.ports import free_port
from cdr_platform.devtools.devloop import DAGSTER_ENV
from cdr_platform.devtools.shutdown import stop_processes
from cdr_platform.errors import PlatformError
from cdr_platform.settings import PROJECT_ROOT

LOCATION = "cdr_platform"
REPOSITORY = "__repository__"

LOCATION_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
LAUNCH_MUTATION = """
mutation Launch($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }
"""


class DagsterDevError(PlatformError):
    """``dagster dev`` did not come up, or its API answered with an error (named in the message)."""


class DagsterDev:
    """A ``dagster dev`` process tree on a free port; a context manager that stops it on exit."""

    def __init__(
        self, home: Path, env: Mapping[str, str], port: int | None = None, log: Path | None = None
    ) -> None:
        self.home = home
        self.env = {**DAGSTER_ENV, **env, "DAGSTER_HOME": str(home)}
        self.port = port or free_port()
        self.log = log or home / "dagster-dev.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, deadline_s: float = 300.0) -> DagsterDev:
        """Start ``dagster dev`` and return once the code location is loaded (or raise, naming why)."""
        self.home.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT_ROOT / "dagster.yaml", self.home / "dagster.yaml")
        dagster = str(Path(sys.executable).with_name("dagster"))
        argv = [dagster, "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-h", "127.0.0.1"]
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                [*argv, "-p", str(self.port)],
                env=self.env,
                cwd=PROJECT_ROOT,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_until_loaded(deadline_s)
        return self

    def wait_until_loaded(self, deadline_s: float) -> None:
        deadline = time.monotonic() + deadline_s
        state = "the webserver has not answered"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise DagsterDevError(f"dagster dev exited with {self.process.returncode}; see {self.log}")
            try:
                entries = self.graphql(LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
            except (OSError, DagsterDevError) as exc:
                state = f"the webserver has not answered ({exc})"
            else:
                entry = next((e for e in entries if e["name"] == LOCATION), None)
                loaded = entry and entry["loadStatus"] == "LOADED"
                if loaded and entry["locationOrLoadError"]["__typename"] == "RepositoryLocation":
                    return
                if loaded:
                    raise DagsterDevError(f"the code location failed to load: {entry['locationOrLoadError']}")
                state = f"code location {LOCATION}: {entry['loadStatus'] if entry else 'not listed'}"
            time.sleep(1.0)
        raise DagsterDevError(f"dagster dev not ready within {deadline_s:.0f}s: {state}; see {self.log}")

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None, timeout_s: float = 60.0) -> Any:
        """The ``data`` of one GraphQL request; GraphQL errors raise ``DagsterDevError``."""
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise DagsterDevError(f"GraphQL answered HTTP {exc.code}: {exc.read()[:500]!r}") from exc
        if answer.get("errors"):
            raise DagsterDevError(f"GraphQL errors: {answer['errors']}")
        return answer["data"]

    def launch_run(self, job: str, tags: Mapping[str, str] | None = None) -> str:
        """Submit a run of ``job`` with its default config; returns the run id."""
        params = {
            "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": job},
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
        }
        result = self.graphql(LAUNCH_MUTATION, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise DagsterDevError(f"launching {job} failed: {result}")
        return str(result["run"]["runId"])

    def stop(self) -> None:
        if self.process is not None:
            stop_processes([self.process])

    def __enter__(self) -> DagsterDev:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def dagster_env(settings_env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment with ``settings_env`` (the ``CDR_*`` values) on top."""
    return {**os.environ, **settings_env}
