"""The data team's view: ``dagster dev`` on the embedded stack, checked through its GraphQL API.

One module fixture starts the devstack, appends a small simulated day to EventStoreDB and starts
``dagster dev`` (webserver, daemon with the sensors on, code server) with this repository's
workspace and ``dagster.yaml``. Against it: every asset lists an owner; the EventStoreDB sensor
requests a landing run by itself and that run succeeds; a run of the executives' KPI asset (with the
dbt models it reads) records its chart metadata; and headless Chromium renders the asset graph to a
screenshot (skipped, with the reason, only when Debian's ``chromium`` is missing).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from esdbclient import EventStoreDBClient

from cdr_platform.devtools.dagster_ui import LOCATION, REPOSITORY, DagsterDev, dagster_env
from cdr_platform.devtools.stack import devstack_for
from cdr_platform.simulator.model import OperatorConfig, build_operator
from cdr_platform.simulator.producers import EventStoreProducer
from cdr_platform.simulator.simulation import Simulation
from tests.conftest import local_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T = TypeVar("T")

EXEC_KPIS = ["marts", "rpt_exec_kpis_intraday"]
CHART_KEY = "calls_per_hour"
"""The exec asset's chart metadata (``defs/transform/assets.py``): calls per hour, today and last week."""
DEADLINE_S = 420.0
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars"]

ASSETS_QUERY = """
{ assetNodes { assetKey { path } kinds dependencyKeys { path }
  owners { __typename ... on TeamAssetOwner { team } ... on UserAssetOwner { email } } } }
"""
RUNS_QUERY = """
query Runs($filter: RunsFilter) { runsOrError(filter: $filter) { __typename
  ... on Runs { results { runId status tags { key value } } } } }
"""
RUN_QUERY = """
query Run($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }
"""
MATERIALIZATION_QUERY = """
query Latest($key: AssetKeyInput!) { assetOrError(assetKey: $key) { __typename ... on Asset {
  assetMaterializations(limit: 1) { runId metadataEntries { __typename label } } } } }
"""
LAUNCH_ASSETS = """
mutation Launch($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }
"""


@dataclass(frozen=True)
class Ui:
    dev: DagsterDev
    tmp: Path


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    tmp = tmp_path_factory.mktemp("dagster-ui")
    settings = local_settings(tmp / "data")
    with devstack_for(settings, persistent=False) as endpoints:
        _append_a_small_day(endpoints["eventstore"])
        env = dagster_env(
            {
                "CDR_DATA_DIR": str(settings.data_dir),
                "CDR_KINESIS_ENDPOINT_URL": settings.kinesis_endpoint_url,
                "CDR_EVENTSTORE_URI": settings.eventstore_uri.get_secret_value(),
            }
        )
        with DagsterDev(settings.dagster_home, env) as dev:
            dev.start(deadline_s=DEADLINE_S)
            yield Ui(dev, tmp)


def _append_a_small_day(uri: str) -> None:
    """Twenty members' traffic of the last day: member events for the sensor, usage for the marts."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    operator = build_operator(OperatorConfig(seed=1501, members=20), start, 1)
    producer = EventStoreProducer(EventStoreDBClient(uri), workers=2)
    try:
        Simulation(operator, producer).run_backfill()
    finally:
        producer.close()


def _wait_for(ui: Ui, what: str, probe: Callable[[], T | None], deadline_s: float = DEADLINE_S) -> T:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(1.0)
    pytest.fail(f"{what} within {deadline_s:.0f}s; dagster dev log: {ui.dev.log}")


def _run_ended(ui: Ui, run_id: str) -> str:
    def status() -> str | None:
        value = ui.dev.graphql(RUN_QUERY, {"id": run_id})["runOrError"]["status"]
        return value if value in ("SUCCESS", "FAILURE", "CANCELED") else None

    return _wait_for(ui, f"run {run_id} to end", status)


@pytest.mark.timeout(900)  # dagster dev, a landing run and a dbt build on a shared 2-core machine
def test_the_data_team_sees_owners_sensor_runs_the_exec_chart_and_the_graph(ui: Ui) -> None:
    assets = ui.dev.graphql(ASSETS_QUERY)["assetNodes"]
    assert len(assets) > 20
    unowned = ["/".join(a["assetKey"]["path"]) for a in assets if not a["owners"]]
    assert not unowned, f"assets without an owner: {unowned}"
    chromium = shutil.which("chromium")
    if chromium is not None:  # first, before runs keep the page busy
        screenshot = _screenshot(chromium, f"{ui.dev.url}/asset-groups", ui.tmp)
        assert screenshot.stat().st_size > 20_000  # a rendered graph (~125 kB), not a blank page (~7 kB)

    def sensor_landing_run() -> dict[str, Any] | None:
        runs = ui.dev.graphql(RUNS_QUERY, {"filter": {"pipelineName": "land_member_events"}})
        for run in runs["runsOrError"]["results"]:
            tags = {t["key"]: t["value"] for t in run["tags"]}
            if tags.get("dagster/sensor_name") == "eventstore_member_sensor":
                return run
        return None

    landing = _wait_for(ui, "the EventStoreDB sensor to request a landing run", sensor_landing_run)
    assert _run_ended(ui, landing["runId"]) == "SUCCESS"

    run_id = _launch_exec_kpis(ui, assets)
    assert _run_ended(ui, run_id) == "SUCCESS"
    latest = ui.dev.graphql(MATERIALIZATION_QUERY, {"key": {"path": EXEC_KPIS}})["assetOrError"]
    [materialization] = latest["assetMaterializations"]
    assert materialization["runId"] == run_id
    labels = {entry["label"] for entry in materialization["metadataEntries"]}
    assert CHART_KEY in labels, f"no chart among the exec asset's metadata: {sorted(labels)}"
    if chromium is None:
        pytest.skip(
            "the asset graph's screenshot: Debian's chromium is not installed (`make install` installs it)"
        )


def _launch_exec_kpis(ui: Ui, assets: list[dict[str, Any]]) -> str:
    """The exec KPI reports (the asset's metadata reads them all) with every dbt model upstream of
    them, without their tests: one dbt build of a few models."""
    dbt = {tuple(a["assetKey"]["path"]): a for a in assets if "dbt" in a["kinds"]}
    selected: set[tuple[str, ...]] = set()
    todo = [key for key in dbt if key[-1].startswith("rpt_exec_kpis")]
    while todo:
        key = todo.pop()
        if key in selected or key not in dbt:
            continue
        selected.add(key)
        todo.extend(tuple(d["path"]) for d in dbt[key]["dependencyKeys"])
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": list(key)} for key in sorted(selected)],
            "assetCheckSelection": [],
        },
        "runConfigData": {},
    }
    result = ui.dev.graphql(LAUNCH_ASSETS, {"params": params})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return str(result["run"]["runId"])


def _screenshot(chromium: str, url: str, folder: Path) -> Path:
    path = folder / "asset-graph.png"
    command = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={folder / 'chromium-profile'}",
        "--window-size=1600,1000",
        "--virtual-time-budget=10000",  # time for the app to fetch and draw the graph
        f"--screenshot={path}",
        url,
    ]
    # Virtual time advances only while the page is idle: a UI answering slowly holds it back.
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0 and path.exists(), result.stderr[-2000:]
    return path
