"""The dbt project as Dagster sees it: its folder, its manifest, the ``dbt`` resource.

Loading the code location never runs dbt: the manifest is prepared beforehand (``make prepare``,
which every make target runs, or ``python -m cdr_platform.defs.transform.prepare`` at image build),
so a run worker starts in the time it takes to read ``target/manifest.json``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from cdr_platform.defs.concurrency import POOLS
from cdr_platform.errors import PlatformError

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"

DBT_EXECUTABLE = (
    str(Path(sys.executable).with_name("dbt"))
    if Path(sys.executable).with_name("dbt").exists()
    else (shutil.which("dbt") or "dbt")
)
"""The venv's dbt, found without relying on PATH (``.venv/bin`` is rarely on it under make or Dagster)."""

DBT_POOL = POOLS.transform
"""dbt's pool: the lake writers' on a SQLite catalog (its commits would collide with landing's), its own
on Postgres (``defs/concurrency.py``)."""


class ManifestMissingError(PlatformError):
    """The dbt manifest has not been prepared; the message says how."""


def dbt_project(project_dir: Path = DBT_PROJECT_DIR) -> DbtProject:
    """The DbtProject; its manifest must have been prepared (this never runs dbt)."""
    project = DbtProject(project_dir=project_dir, profiles_dir=project_dir)
    if not project.manifest_path.exists():
        raise ManifestMissingError(
            f"{project.manifest_path} is missing: run `make prepare` "
            "(or `python -m cdr_platform.defs.transform.prepare`) before loading the definitions"
        )
    return project


def dbt_cli(project: DbtProject) -> DbtCliResource:
    """The ``dbt`` resource: the venv's dbt on this project and its committed profiles.yml."""
    return DbtCliResource(
        project_dir=project, profiles_dir=str(project.profiles_dir), dbt_executable=DBT_EXECUTABLE
    )
