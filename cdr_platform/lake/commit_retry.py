"""Retry a landing that lost a commit race on the lake's catalog, exactly once intact.

On a Postgres catalog, shard workers land concurrently. DuckLake checks conflicts at commit, and two
raw-layer transactions always conflict (both rewrite ``meta.raw_writer``, see ``claim_raw_writer``):
the loser's COMMIT raises ``duckdb.TransactionException`` with
``Failed to commit DuckLake transaction.`` and ``Transaction conflict - attempting to insert into
table with index "5" - but another transaction has deleted inlined data from it`` (measured on the
production devstack profile). ``in_transaction`` already re-runs a conflicted transaction a few times;
with several workers committing back to back the conflicts can outlast those attempts, so landing
callers go through ``land_with_retry``. Re-running ``land_batch`` is safe: its anti-join and
checkpoints are recomputed in a fresh transaction, which sees the winner's rows and lands only the rest.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import duckdb

from cdr_platform.lake.landing import LandingBatch, LandingResult, land_batch

T = TypeVar("T")
COMMIT_FAILED = "Failed to commit DuckLake transaction"
CONFLICT = "Transaction conflict"


def is_commit_conflict(exc: BaseException) -> bool:
    """True for DuckLake's refusal of a commit that raced another writer's (safe to re-run)."""
    message = str(exc)
    return isinstance(exc, duckdb.TransactionException) and COMMIT_FAILED in message and CONFLICT in message


def retry_commit_conflicts(
    work: Callable[[], T],
    *,
    attempts: int = 6,
    base_delay_s: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``work`` (one whole landing) again after a commit conflict, with jittered exponential backoff.

    Any other error, or a conflict on the last attempt, propagates unchanged.
    """
    for attempt in range(attempts):
        try:
            return work()
        except duckdb.TransactionException as exc:
            if not is_commit_conflict(exc) or attempt == attempts - 1:
                raise
            sleep(random.uniform(0.5, 1.0) * base_delay_s * 2**attempt)
    raise AssertionError("unreachable")


def land_with_retry(
    con: duckdb.DuckDBPyConnection, batch: LandingBatch, *, dedupe_window: timedelta | None = None
) -> LandingResult:
    """``land_batch`` that survives losing commit races to concurrent shard workers."""
    return retry_commit_conflicts(lambda: land_batch(con, batch, dedupe_window=dedupe_window))
