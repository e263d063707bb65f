"""Dagster wiring: resources, assets, sensors, checks and schedules, one folder per source.

Modules that define assets, sensors or config classes do not use ``from __future__ import
annotations``: Dagster reads those annotations at definition time to find config and resources.
"""
