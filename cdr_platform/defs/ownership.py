"""Owning teams: every asset has a group (the team) and an owner (``team:<name>``)."""

from __future__ import annotations

DATA_PLATFORM = "data_platform"
OWNER_DATA_PLATFORM = f"team:{DATA_PLATFORM}"

RAW_WRITER_POOL = "lake_raw_writer"
"""All writers of the raw layer share this pool (limit 1): DuckLake has no unique keys to dedupe on."""

LANDING_TAG = "cdr/landing"
"""Run tag whose value is the source; dagster.yaml allows one in-progress run per value."""
