"""The dbt project as Dagster sees it, and the environment dbt runs with.

``dbt_project/profiles.yml`` reads ``CDR_LAKE_CATALOG`` and ``CDR_LAKE_DATA_PATH``; settings may
come from a TOML file instead, so every Python entry point that runs dbt exports the resolved
values first (``export_lake_environment``). The salt is never exported: the dbt plugin reads it
from the settings itself.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from cdr_platform.defs.ownership import LAKE_WRITER_POOL
from cdr_platform.settings import PROJECT_ROOT, Settings

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

DBT_EXECUTABLE = (
    str(Path(sys.executable).with_name("dbt"))
    if Path(sys.executable).with_name("dbt").exists()
    else (shutil.which("dbt") or "dbt")
)
"""The venv's dbt, found without relying on PATH (``.venv/bin`` is rarely on it under make or Dagster)."""

DBT_POOL = LAKE_WRITER_POOL
"""dbt runs take the lake writers' pool: they would otherwise collide with landing commits."""


def export_lake_environment(settings: Settings) -> dict[str, str]:
    """Put the resolved lake location where profiles.yml (and dbt subprocesses) read it."""
    values = {
        "CDR_LAKE_CATALOG": settings.resolved_lake_catalog,
        "CDR_LAKE_DATA_PATH": settings.resolved_lake_data_path,
    }
    os.environ.update(values)
    return values


def dbt_cli(project: DbtProject) -> DbtCliResource:
    """The ``dbt`` resource: the venv's dbt on this project and its committed profiles.yml."""
    return DbtCliResource(
        project_dir=project, profiles_dir=str(project.profiles_dir), dbt_executable=DBT_EXECUTABLE
    )


def parse_manifest(project: DbtProject) -> Path:
    """Run ``dbt parse`` into the project's target folder; returns the manifest's path."""
    dbt_cli(project).cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return project.manifest_path


def dbt_project(project_dir: Path = DBT_PROJECT_DIR) -> DbtProject:
    """The DbtProject, with a manifest guaranteed to exist (parsed now if missing).

    Under ``dagster dev`` the manifest is re-parsed on every load, so model edits show up on
    reload; elsewhere (tests, a fresh clone, CI) it is parsed once when absent. Deployments run
    ``python -m cdr_platform.defs.transform.prepare`` at build time instead.
    """
    project = DbtProject(project_dir=project_dir, profiles_dir=project_dir)
    if project.preparer.using_dagster_dev() or not project.manifest_path.exists():
        parse_manifest(project)
    return project
