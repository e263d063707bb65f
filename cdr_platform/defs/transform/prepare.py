"""``python -m cdr_platform.defs.transform.prepare [--force]``: write dbt's ``target/manifest.json``.

Dagster loads the dbt models from the manifest and never runs dbt while loading, so the manifest
is prepared ahead: by ``make prepare`` (every make target depends on it), at image build, and by
the test session. It is re-parsed only when a file of the dbt project is newer than it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from cdr_platform.defs.transform.project import DBT_PROJECT_DIR, dbt_cli

SOURCE_GLOBS = ("dbt_project.yml", "profiles.yml", "models/**/*", "macros/**/*", "tests/**/*")


def manifest_is_stale(project: DbtProject) -> bool:
    """True when the manifest is missing or older than a file it is parsed from."""
    if not project.manifest_path.exists():
        return True
    built = project.manifest_path.stat().st_mtime
    root = Path(project.project_dir)
    return any(path.stat().st_mtime > built for pattern in SOURCE_GLOBS for path in root.glob(pattern))


def prepare_manifest(force: bool = False, project_dir: Path = DBT_PROJECT_DIR) -> Path | None:
    """Run ``dbt parse`` when the manifest is stale (or ``force``); returns its path if it parsed."""
    project = DbtProject(project_dir=project_dir, profiles_dir=project_dir)
    if not (force or manifest_is_stale(project)):
        return None
    dbt_cli(project).cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return project.manifest_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Prepare the dbt manifest that Dagster loads.")
    parser.add_argument("--force", action="store_true", help="parse even if the manifest looks current")
    args = parser.parse_args(argv)
    path = prepare_manifest(force=args.force)
    print(f"dbt manifest: {path or 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
