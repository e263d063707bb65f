"""Pools and run tags that keep lake writers from colliding, chosen by the lake's catalog.

DuckLake has no unique keys; landing keeps each event once by claiming key ranges in its transaction
(``lake/claims.py``), so two writers that could land one event conflict at commit and one re-runs.

- **SQLite catalog** (the embedded profile): the catalog refuses a commit outright when two
  processes upgrade to writers at once (duckdb/ducklake#1309), which dbt does not retry. Every
  writer of the lake (landing, replay, reconciliation, dead letter, dbt, maintenance) shares the pool
  ``lake_writer``, limit 1 (``dagster.yaml``'s ``default_limit``), and Kinesis landing is one run.
- **Postgres catalog** (production): Kinesis landing runs one run per shard group at a time (the
  ``cdr/landing`` tag, value ``kinesis/<group>``, limit 1 per value), in no pool: groups commit side
  by side. EventStoreDB landing, replay, reconciliation and the dead letter keep ``lake_writer``
  among themselves (their claims would let them run beside the shard groups; the pool keeps their
  rare runs from piling up). dbt builds in ``lake_transform`` and maintenance in ``lake_maintenance``,
  each limit 1, beside landing.

Pools are names fixed when the code location loads, so they are chosen from the settings then.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdr_platform.settings import Settings, load_settings

LAKE_WRITER_POOL = "lake_writer"
TRANSFORM_POOL = "lake_transform"
MAINTENANCE_POOL = "lake_maintenance"

LANDING_TAG = "cdr/landing"
"""Run tag whose value is the source (``kinesis/<group>`` for a shard group); dagster.yaml allows one
in-progress run per value."""


@dataclass(frozen=True)
class LakePools:
    """The pool of each kind of lake writer (None: no pool, bounded by its run tag only)."""

    shard_landing: str | None
    raw_writers: str
    transform: str
    maintenance: str


def lake_pools(settings: Settings) -> LakePools:
    """One pool for every writer on a SQLite catalog; on Postgres, shard groups, dbt and maintenance apart."""
    if not settings.concurrent_lake_writers:
        return LakePools(LAKE_WRITER_POOL, LAKE_WRITER_POOL, LAKE_WRITER_POOL, LAKE_WRITER_POOL)
    return LakePools(None, LAKE_WRITER_POOL, TRANSFORM_POOL, MAINTENANCE_POOL)


POOLS = lake_pools(load_settings())
"""The pools of this code location, from the environment's settings at load."""


def kinesis_landing_tag(group: int, groups: int) -> str:
    """The ``cdr/landing`` value of a Kinesis landing run: ``kinesis`` alone, else ``kinesis/<group>``."""
    return "kinesis" if groups == 1 else f"kinesis/{group}"
