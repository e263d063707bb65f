"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here."""

from __future__ import annotations

from dagster import Definitions

from cdr_platform.defs.resources import build_resources
from cdr_platform.settings import load_settings


def build_definitions() -> Definitions:
    """Definitions wired from the current settings (a bad setting fails here, at load)."""
    settings = load_settings()
    return Definitions(resources=build_resources(settings))


defs = build_definitions()
