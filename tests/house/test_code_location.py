"""Loading the code location is cheap and has no side effects: what every run worker pays."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cdr_platform.defs.transform.project import dbt_project

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, os, subprocess
started = []
real_popen = subprocess.Popen.__init__
def recording(self, args, *a, **k):
    started.append(args if isinstance(args, str) else [str(x) for x in args])
    real_popen(self, args, *a, **k)
subprocess.Popen.__init__ = recording
before = dict(os.environ)
import cdr_platform.definitions as location
after = dict(os.environ)
changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
assets = len(list(location.defs.resolve_asset_graph().get_all_asset_keys()))
print(json.dumps({"changed": changed, "subprocesses": started, "assets": assets}))
"""


@pytest.mark.parametrize("under_dagster_dev", [False, True], ids=["plain", "dagster-dev"])
def test_import_writes_no_environment_and_runs_no_dbt(under_dagster_dev: bool) -> None:
    manifest = dbt_project().manifest_path
    before = manifest.stat().st_mtime_ns
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDR_")}
    if under_dagster_dev:
        env["DAGSTER_IS_DEV_CLI"] = "1"  # where dagster-dbt's prepare_if_dev would parse
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["changed"] == []
    assert [argv for argv in result["subprocesses"] if any("dbt" in part for part in argv)] == []
    assert result["assets"] > 20
    assert manifest.stat().st_mtime_ns == before  # dbt did not re-parse behind our back


def test_every_defs_folder_contributes_its_own_definitions() -> None:
    from cdr_platform.definitions import defs, folder_definitions

    folders = folder_definitions()
    assert len(folders) == len(
        [p for p in (ROOT / "cdr_platform" / "defs").iterdir() if (p / "__init__.py").exists()]
    )
    merged = set(defs.resolve_asset_graph().get_all_asset_keys())
    for folder in folders:
        keys = {spec.key for asset in folder.assets or [] for spec in getattr(asset, "specs", [asset])}
        assert keys <= merged
        assert keys or folder.jobs or folder.schedules or folder.sensors, "a defs folder that defines nothing"
    jobs = (
        "land_usage_events",
        "land_member_events",
        "reconcile_usage_events",
        "dbt_daily_build",
        "maintain_lake_job",
    )
    for name in jobs:
        assert defs.resolve_job_def(name) is not None
