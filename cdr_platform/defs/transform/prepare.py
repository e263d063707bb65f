"""``python -m cdr_platform.defs.transform.prepare``: parse the dbt project into target/manifest.json.

Dagster loads the dbt models from the manifest; run this at image build or before ``dagster dev``
on a fresh clone (the definitions also parse on load when the manifest is missing).
"""

from __future__ import annotations

import sys

from dagster_dbt import DbtProject

from cdr_platform.defs.transform.project import DBT_PROJECT_DIR, export_lake_environment, parse_manifest
from cdr_platform.settings import load_settings


def main() -> int:
    export_lake_environment(load_settings())
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    print(f"dbt manifest: {parse_manifest(project)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
