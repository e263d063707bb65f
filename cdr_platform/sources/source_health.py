"""Read-only positions of the sources, for health observations: how far each consumer trails its source.

- The relay: its checkpoint file (written only by the relay, read here, never changed) against the usage
  events in $all after it. Its lag is the age of the oldest usage event the relay has not yet passed,
  by EventStoreDB's recorded time, so a dead relay's lag grows with every event appended after it died,
  and a caught-up relay's is 0 however old its last event is.
- Kinesis shards: for each shard, the first record after the landed sequence number (one GetRecords
  call of one record, the payload never parsed) and Kinesis's ``MillisBehindLatest`` there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from esdbclient import EventStoreDBClient
from esdbclient.exceptions import EventStoreDBClientException

from cdr_platform.sources.eventstore_reader import EventStoreReadError, type_filter
from cdr_platform.sources.kinesis_reader import Shard, ShardPosition, call_with_backoff, shard_iterator
from cdr_platform.sources.relay import read_checkpoint


@dataclass(frozen=True)
class RelayLag:
    """The relay's checkpoint against $all, as of ``measured_at``."""

    checkpoint_found: bool
    checkpoint_position: int | None  # None: no checkpoint yet, the relay starts from the beginning
    events_published: int  # what the checkpoint says the relay has put so far
    head_position: int | None  # commit position of the newest usage event in $all (None: there is none)
    events_behind: int  # usage events after the checkpoint, counted up to ``count_limit``
    events_behind_capped: bool  # True when there are at least ``events_behind`` (the count stopped)
    oldest_unrelayed_at: datetime | None  # recorded time of the first usage event after the checkpoint
    measured_at: datetime

    @property
    def seconds_behind(self) -> float:
        """Age of the oldest usage event the relay has not passed; 0 when it is caught up."""
        if self.oldest_unrelayed_at is None:
            return 0.0
        return max(0.0, (self.measured_at - self.oldest_unrelayed_at).total_seconds())


def measure_relay_lag(
    client: EventStoreDBClient,
    checkpoint_path: Path,
    event_types: Iterable[str],
    now: datetime,
    *,
    count_limit: int = 5_000,
    timeout_s: float | None = None,
) -> RelayLag:
    """Read the relay's checkpoint and the usage events of $all after it (at most ``count_limit``).

    An unreadable checkpoint raises the relay's own ``RelayConfigError`` (the relay would stop on it too).
    """
    state = read_checkpoint(checkpoint_path)
    after = state.commit_position
    filter_include = type_filter(event_types)
    try:
        head = client.get_commit_position(filter_include=filter_include, timeout=timeout_s) or None
        events = []
        if head is not None and (after is None or head > after):
            events = list(
                client.read_all(
                    commit_position=after,
                    filter_include=filter_include,
                    limit=count_limit + 1,
                    timeout=timeout_s,
                )
            )
    except EventStoreDBClientException as exc:
        raise EventStoreReadError(f"reading $all after the relay's position {after} failed: {exc!r}") from exc
    unrelayed = [e for e in events if after is None or e.commit_position > after]
    return RelayLag(
        checkpoint_found=checkpoint_path.exists(),
        checkpoint_position=after,
        events_published=state.events_published,
        head_position=head,
        events_behind=min(len(unrelayed), count_limit),
        events_behind_capped=len(unrelayed) > count_limit,
        oldest_unrelayed_at=unrelayed[0].recorded_at if unrelayed else None,
        measured_at=now,
    )


@dataclass(frozen=True)
class ShardLag:
    """One shard against what the lake has landed of it."""

    shard_id: str
    closed: bool  # closed by a reshard
    landed_sequence: str | None
    landed_to_end: bool  # a closed shard landed to its end
    next_sequence: str | None  # of the first record after the landed one (None: nothing after it)
    oldest_unlanded_age_ms: int  # arrival age of that record; 0 when nothing is waiting
    millis_behind_latest: int  # Kinesis's figure after that record (0: it is the newest)

    @property
    def caught_up(self) -> bool:
        return self.landed_to_end if self.closed else self.next_sequence is None


def measure_shard_lag(
    client: Any, stream_name: str, shard: Shard, position: ShardPosition | None, now: datetime
) -> ShardLag:
    """One GetRecords call of at most one record after the landed position of the shard."""
    landed = position.sequence_number if position else None
    ended = bool(position and position.ended)
    next_sequence, age_ms, behind = None, 0, 0
    if not ended:
        iterator, _ = shard_iterator(client, stream_name, shard.shard_id, landed)
        page = call_with_backoff(client.get_records, ShardIterator=iterator, Limit=1)
        behind = int(page.get("MillisBehindLatest", 0))
        if page["Records"]:
            record = page["Records"][0]
            next_sequence = record["SequenceNumber"]
            arrived = record["ApproximateArrivalTimestamp"]
            age_ms = max(0, int((now - arrived).total_seconds() * 1000))
    return ShardLag(
        shard.shard_id,
        shard.ending_sequence is not None,
        landed,
        ended,
        next_sequence,
        age_ms,
        behind,
    )


def measure_stream_lag(
    client: Any,
    stream_name: str,
    shards: Iterable[Shard],
    positions: Mapping[str, ShardPosition],
    now: datetime,
) -> list[ShardLag]:
    """Every shard's lag, in the order given."""
    return [measure_shard_lag(client, stream_name, s, positions.get(s.shard_id), now) for s in shards]
