"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here.

Each folder of ``cdr_platform/defs/`` builds its own ``Definitions`` in its ``definitions.py``
(assets, checks, jobs beside their assets, sensors, schedules); this module finds them, merges
them and adds the resources built from the settings. Adding a source is a new folder, nothing here.
Importing this module runs no dbt command, writes no environment variable and touches no
endpoint: the dbt manifest is prepared beforehand (``make prepare``).
"""

from __future__ import annotations

import importlib
import pkgutil

from dagster import Definitions, in_process_executor

import cdr_platform.defs
from cdr_platform.defs.resources import build_resources
from cdr_platform.settings import Settings, load_settings


def folder_definitions() -> list[Definitions]:
    """The ``defs`` of every ``cdr_platform/defs/<folder>/definitions.py``, in folder order."""
    found = []
    for folder in sorted(pkgutil.iter_modules(cdr_platform.defs.__path__), key=lambda m: m.name):
        if folder.ispkg:
            module = importlib.import_module(f"cdr_platform.defs.{folder.name}.definitions")
            found.append(module.defs)
    return found


def build_definitions(settings: Settings | None = None) -> Definitions:
    """Every folder's definitions with resources from ``settings`` (the environment's by default).

    A bad setting fails here, at load, with the key named.
    """
    settings = settings or load_settings()
    # One process per run, steps in it: a step process per op would load this location again (~8 s of
    # CPU each on a 2-core machine), which is most of a dbt or reconciliation run's start.
    shared = Definitions(resources=build_resources(settings), executor=in_process_executor)
    return Definitions.merge(*folder_definitions(), shared)


defs = build_definitions()
