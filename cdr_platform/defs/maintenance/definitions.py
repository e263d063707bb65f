"""Lake maintenance: the hourly job that keeps DuckLake's files and snapshots bounded."""

from dagster import Definitions

from cdr_platform.defs.maintenance.jobs import maintain_lake_job, maintain_lake_schedule

defs = Definitions(jobs=[maintain_lake_job], schedules=[maintain_lake_schedule])
