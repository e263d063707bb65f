"""Checkpoints of long jobs that publish outside the lake (new-consumer streams), kept in the lake."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import duckdb

from cdr_platform.lake.connection import in_transaction
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
        checkpoint = EventStoreCheckpoint(consumer, position)
        in_transaction(con, lambda: save_eventstore_checkpoint(con, checkpoint, datetime.now(UTC)))

    return load, save
