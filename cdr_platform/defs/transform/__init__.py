"""dbt on the lake, wired into Dagster: models as assets downstream of the raw landing assets.

``transform_definitions_parts(settings)`` returns what ``cdr_platform/definitions.py`` adds to
its ``Definitions``: the dbt assets (with dbt tests as asset checks), the daily build schedule and
the ``dbt`` resource. The ``lake`` resource is the platform's own (``build_resources``).
"""

from __future__ import annotations

from typing import Any

from cdr_platform.defs.transform.assets import build_dbt_assets
from cdr_platform.defs.transform.project import dbt_cli, dbt_project, export_lake_environment
from cdr_platform.defs.transform.schedules import daily_dbt_build_schedule
from cdr_platform.settings import Settings


def transform_definitions_parts(settings: Settings) -> dict[str, Any]:
    """``{"assets": [...], "schedules": [...], "resources": {"dbt": ...}}`` for ``Definitions``."""
    export_lake_environment(settings)
    project = dbt_project()
    dbt_models = build_dbt_assets(project)
    return {
        "assets": [dbt_models],
        "schedules": [daily_dbt_build_schedule(dbt_models)],
        "resources": {"dbt": dbt_cli(project)},
    }


__all__ = ["transform_definitions_parts"]
