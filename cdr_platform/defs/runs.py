"""Helpers for sensors that must not pile up runs."""

from __future__ import annotations

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def landing_run_in_flight(instance: DagsterInstance, job_name: str) -> bool:
    """True when a run of the job is queued or running, so a sensor should not request another."""
    return bool(instance.get_run_records(RunsFilter(job_name=job_name, statuses=IN_FLIGHT), limit=1))
