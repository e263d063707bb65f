"""One EventStoreDB landing run: filtered $all from the stored position into the raw layer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import duckdb
from esdbclient import EventStoreDBClient

from cdr_platform.lake.landing import (
    EventStoreCheckpoint,
    LandingBatch,
    SourceRecord,
    land_batch,
    load_eventstore_checkpoint,
)
from cdr_platform.sources.eventstore_reader import read_filtered_batch

SOURCE = "eventstore"


@dataclass
class EventStoreLandingReport:
    batches: int = 0
    received: int = 0
    landed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    start_position: int | None = None
    position: int | None = None
    caught_up: bool = False
    seconds: float = 0.0


def land_eventstore(
    con: duckdb.DuckDBPyConnection,
    client: EventStoreDBClient,
    consumer: str,
    event_types: Iterable[str],
    *,
    batch_size: int = 10_000,
    max_batches: int = 100,
    before_commit: Callable[[LandingBatch], None] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> EventStoreLandingReport:
    """Land events of ``event_types`` until caught up or ``max_batches`` batches are done."""
    types = list(event_types)
    report = EventStoreLandingReport()
    started = time.monotonic()
    position = load_eventstore_checkpoint(con, consumer)
    report.start_position = position
    for _ in range(max_batches):
        batch_read = read_filtered_batch(client, position, types, max_events=batch_size)
        if batch_read.position is None or (batch_read.position == position and not batch_read.events):
            report.caught_up = batch_read.caught_up
            break
        records = [SourceRecord(e.data, str(e.commit_position)) for e in batch_read.events]
        batch = LandingBatch(
            SOURCE, records, eventstore_checkpoint=EventStoreCheckpoint(consumer, batch_read.position)
        )
        if before_commit is not None:
            before_commit(batch)
        result = land_batch(con, batch)
        position = batch_read.position
        report.batches += 1
        report.received += result.received
        report.landed += result.landed
        report.duplicates += result.duplicates
        report.dead_lettered += result.dead_lettered
        log(
            f"batch {report.batches}: {result.received} events up to position {position}, {result.landed} new"
        )
        if batch_read.caught_up:
            report.caught_up = True
            break
    report.position = position
    report.seconds = time.monotonic() - started
    return report
