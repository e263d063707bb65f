"""One Kinesis landing run: read bounded pages per shard, land them with their checkpoints.

Each round reads one page from every shard that may be read now (lineage order: children only
after all their parents ended) and lands all pages and the new shard positions in one DuckLake
transaction; a shard's position carries the latest relay heartbeat read from it
(``sources/relay_heartbeat``), which lands no row. Rounds repeat until no shard has anything new or
the page budget is spent. The positions come from the warehouse, never from a sensor cursor, so a
crash anywhere re-reads exactly what did not commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from cdr_platform.lake.landing import (
    LandingBatch,
    LandingResult,
    ShardCheckpoint,
    SourceRecord,
    land_batch,
    load_shard_checkpoints,
)
from cdr_platform.sources.kinesis_reader import (
    Shard,
    ShardPage,
    ShardPosition,
    list_shards,
    read_shard_page,
    readable_shards,
)
from cdr_platform.sources.relay_heartbeat import decode_heartbeat, event_records

SOURCE = "kinesis"


@dataclass
class KinesisLandingReport:
    rounds: int = 0
    kinesis_records: int = 0
    received: int = 0
    landed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    shard_lag_ms: dict[str, int] = field(default_factory=dict)
    ended_shards: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, result: LandingResult) -> None:
        self.received += result.received
        self.landed += result.landed
        self.duplicates += result.duplicates
        self.dead_lettered += result.dead_lettered

    @property
    def events_per_second(self) -> float:
        return self.received / self.seconds if self.seconds else 0.0


def shard_group(shard: Shard, groups: int) -> int:
    """The group (of ``groups`` equal slices of the hash-key space) holding the middle of the shard's range.

    Groups of an evenly split stream own whole shards and whole claim ranges of the lake
    (``lake/claims.py``), so runs of different groups do not conflict; the children of a split shard
    stay in their parent's group. The middle, not the start, so that an endpoint that starts a range
    one key early (kinesis-local does) still places the shard where it belongs.
    """
    return (shard.start_hash + shard.end_hash) // 2 * groups >> 128


def page_to_records(page: ShardPage) -> list[SourceRecord]:
    """De-aggregate a page, relay heartbeats left out; an event's position is ``shard/sequence/sub-index``."""
    out = []
    for record in page.records:
        for index, user in enumerate(event_records(record.partition_key, record.data)):
            out.append(SourceRecord(user.data, f"{page.shard_id}/{record.sequence_number}/{index}"))
    return out


def latest_heartbeat_time(page: ShardPage) -> datetime | None:
    """The latest relay heartbeat's time on the page (None without one); landing keeps the shard's
    latest across pages (``land_batch``)."""
    heartbeats = (decode_heartbeat(record.partition_key, record.data) for record in page.records)
    return max((h.published_through for h in heartbeats if h is not None), default=None)


def land_kinesis_stream(
    con: duckdb.DuckDBPyConnection,
    client: Any,
    stream_name: str,
    *,
    records_per_page: int = 5_000,
    max_rounds: int = 100,
    shard_ids: Collection[str] | None = None,
    before_commit: Callable[[LandingBatch], None] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> KinesisLandingReport:
    """Land everything new on the stream (up to ``max_rounds`` rounds of one page per shard).

    ``shard_ids`` restricts the run to the shards it owns (a shard group), so runs on other groups can
    land beside it on a Postgres catalog; a lost commit race is re-run by ``land_batch``.
    """
    report = KinesisLandingReport()
    started = time.monotonic()
    for _ in range(max_rounds):
        checkpoints = load_shard_checkpoints(con, stream_name)
        positions = {k: ShardPosition(v.sequence_number, v.shard_ended) for k, v in checkpoints.items()}
        shards = readable_shards(list_shards(client, stream_name), positions)
        if shard_ids is not None:
            shards = [shard for shard in shards if shard.shard_id in shard_ids]
        pages = []
        for shard in shards:
            landed = positions.get(shard.shard_id)
            page = read_shard_page(
                client,
                stream_name,
                shard.shard_id,
                landed.sequence_number if landed else None,
                records_per_page,
            )
            report.shard_lag_ms[shard.shard_id] = page.millis_behind_latest
            if page.records or page.ended:
                pages.append(page)
        if not pages:
            break
        records = [r for page in pages for r in page_to_records(page)]
        batch = LandingBatch(
            SOURCE,
            records,
            shard_checkpoints=[
                ShardCheckpoint(stream_name, p.shard_id, p.last_sequence, p.ended, latest_heartbeat_time(p))
                for p in pages
            ],
        )
        if before_commit is not None:
            before_commit(batch)
        result = land_batch(con, batch)
        report.add(result)
        report.rounds += 1
        report.kinesis_records += sum(len(p.records) for p in pages)
        report.ended_shards += [p.shard_id for p in pages if p.ended]
        log(
            f"round {report.rounds}: {result.received} events from {len(pages)} shards, "
            f"{result.landed} new, {result.duplicates} duplicates, {result.dead_lettered} dead-lettered"
        )
        if not records and all(p.millis_behind_latest == 0 and not p.ended for p in pages):
            break  # caught up on heartbeats alone: the relay sends one a second, a quiet stream ends here
    report.seconds = time.monotonic() - started
    return report
