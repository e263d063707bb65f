"""Checkpoints of long jobs that publish outside the lake (new-consumer streams), kept in the lake."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import duckdb

from cdr_platform.lake.landing import (
    EventStoreCheckpoint,
    load_eventstore_checkpoint,
    save_eventstore_checkpoint,
)


def checkpoint_store(
    con: duckdb.DuckDBPyConnection, consumer: str
) -> tuple[Callable[[], int | None], Callable[[int], None]]:
    """(load, save) for a consumer's $all position; each save commits on its own."""

    def load() -> int | None:
        return load_eventstore_checkpoint(con, consumer)

    def save(position: int) -> None:
        con.execute("BEGIN TRANSACTION")
        try:
            save_eventstore_checkpoint(con, EventStoreCheckpoint(consumer, position), datetime.now(UTC))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    return load, save
