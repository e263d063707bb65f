"""Pools and run tags that keep lake writers from colliding."""

from __future__ import annotations

LAKE_WRITER_POOL = "lake_writer"
"""Every writer of the lake (landing, replay, reconciliation, dbt) shares this pool, limit 1 locally.

DuckLake has no unique keys, so two raw-layer writers could land the same event twice; and a
SQLite catalog refuses a commit outright when two processes upgrade to writers at once
(duckdb/ducklake#1309), which dbt does not retry. With a Postgres catalog in production, the
raw-layer writers still need the limit of 1, but dbt could get a pool of its own."""

LANDING_TAG = "cdr/landing"
"""Run tag whose value is the source; dagster.yaml allows one in-progress run per value."""
