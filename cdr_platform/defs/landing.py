"""Landing jobs and what their sensors share: one run per source at a time, and what has landed so far."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import duckdb
from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
    SkipReason,
    define_asset_job,
    in_process_executor,
)

from cdr_platform.defs.concurrency import LANDING_TAG
from cdr_platform.defs.resources import LakeResource
from cdr_platform.lake.connection import LakeError

T = TypeVar("T")

PROBE_DEADLINE_S = 15.0
"""How long a sensor waits for one endpoint before skipping the tick (Dagster's tick limit is 60 s)."""

IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def landing_job(name: str, asset: AssetKey, source: str, description: str) -> Any:
    """A landing job: one asset, checks left to their own schedule, run in one process, tagged by source."""
    return define_asset_job(
        name,
        selection=AssetSelection.assets(asset).without_checks(),
        executor_def=in_process_executor,  # one process per run: landing latency is mostly process start-up
        tags={LANDING_TAG: source},  # dagster.yaml: one in-progress run per source
        description=description,
    )


def landing_run_in_flight(instance: DagsterInstance, job_name: str, landing_tag: str | None = None) -> bool:
    """True when a run of the job (with this ``cdr/landing`` value, if given) is queued or running, so a
    sensor should not request another."""
    tags = {LANDING_TAG: landing_tag} if landing_tag is not None else None
    runs = RunsFilter(job_name=job_name, statuses=IN_FLIGHT, tags=tags)
    return bool(instance.get_run_records(runs, limit=1))


def read_landed(
    lake: LakeResource, load: Callable[[duckdb.DuckDBPyConnection], T], empty: T
) -> T | SkipReason:
    """What the lake says has landed, read-only; ``empty`` before the first landing run.

    An unreadable warehouse is a reason to skip the tick, said plainly, never a silent "nothing".
    """
    if not lake.exists():  # no warehouse yet: everything is new
        return empty
    try:
        with lake.connect(read_only=True) as con:
            return load(con)
    except duckdb.CatalogException:
        return empty  # the warehouse exists, but no landing run has created the checkpoints yet
    except LakeError as exc:
        return SkipReason(f"the lake cannot be read: {exc}")


def probe_within(endpoint: str, probe: Callable[[], T], deadline_s: float = PROBE_DEADLINE_S) -> T:
    """``probe()``, or ``EndpointHungError`` naming ``endpoint`` once ``deadline_s`` has passed.

    The probe runs on a daemon thread: an endpoint that accepts connections but never answers
    (a frozen process, a black-holed route) cannot hold the sensor tick past its limit. Clients
    carry their own shorter timeouts, so the abandoned thread ends soon after.
    """
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(probe())
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    worker = threading.Thread(target=run, name=f"probe {endpoint}", daemon=True)
    worker.start()
    worker.join(deadline_s)
    if worker.is_alive():
        raise EndpointHungError(f"{endpoint} did not answer within {deadline_s:.0f}s (hung or overloaded)")
    if failure:
        raise failure[0]
    return outcome[0]


class EndpointHungError(TimeoutError):
    """An endpoint accepted the call but did not answer within the sensor's deadline."""
