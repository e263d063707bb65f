"""Dagster wiring: resources, assets, sensors, checks and schedules, one folder per source."""
