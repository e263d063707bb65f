"""New-consumer streams: publish a filtered slice of EventStoreDB's history to a Kinesis stream.

A new consumer names a filter (event types, member ids, stream categories, an event-time window)
and a target stream. The export creates the stream if needed (and refuses one that exists with
another shard count), reads $all from its checkpoint with a server-side event-type filter, keeps
what matches the rest of the filter, and publishes it with the relay's record format (KPL
aggregates, partition key = member id, so per-member order holds). The checkpoint moves only
after Kinesis acknowledged everything before it: a crash repeats at most one page (at least
once; consumers dedupe by event_id). A filter that matches nothing fails with that message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from esdbclient import EventStoreDBClient

from cdr_platform.errors import PlatformError
from cdr_platform.events import MEMBER_EVENT_TYPES, USAGE_EVENT_TYPES, Rejection, parse_event
from cdr_platform.events.framing import UserRecord
from cdr_platform.events.times import parse_aware_time
from cdr_platform.sources.eventstore_reader import read_all_after
from cdr_platform.sources.kinesis_publisher import KinesisPublisher, wait_until_active


class StreamRequestError(PlatformError):
    """The request cannot be served as asked; the message says why and what to change."""


@dataclass(frozen=True)
class HistoryFilter:
    event_types: tuple[str, ...] = tuple(sorted(USAGE_EVENT_TYPES | MEMBER_EVENT_TYPES))
    member_ids: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()  # stream categories: the part of the name before '-'
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.event_types) - USAGE_EVENT_TYPES - MEMBER_EVENT_TYPES)
        if unknown:
            raise StreamRequestError(f"unknown event types in the filter: {', '.join(unknown)}")
        if not self.event_types:
            raise StreamRequestError("the filter names no event type")

    def matches(self, stream_name: str, member_id: str, occurred_at: datetime) -> bool:
        if self.categories and stream_name.split("-", 1)[0] not in self.categories:
            return False
        if self.member_ids and member_id not in self.member_ids:
            return False
        if self.occurred_from is not None and occurred_at < self.occurred_from:
            return False
        return self.occurred_to is None or occurred_at < self.occurred_to


def build_filter(
    event_types: list[str] | None = None,
    member_ids: list[str] | None = None,
    categories: list[str] | None = None,
    occurred_from: str | None = None,
    occurred_to: str | None = None,
) -> HistoryFilter:
    """A filter from user input (CLI or launchpad): empty lists mean "all", times are ISO 8601."""

    def when(value: str | None, name: str) -> datetime | None:
        try:
            return parse_aware_time(value, name) if value else None
        except ValueError as exc:
            raise StreamRequestError(str(exc)) from exc

    types = {"event_types": tuple(sorted(event_types))} if event_types else {}
    return HistoryFilter(
        **types,
        member_ids=frozenset(member_ids or ()),
        categories=frozenset(categories or ()),
        occurred_from=when(occurred_from, "occurred_from"),
        occurred_to=when(occurred_to, "occurred_to"),
    )


@dataclass
class ExportReport:
    target_stream: str
    created_stream: bool = False
    scanned: int = 0
    published: int = 0
    position: int | None = None
    resumed_from: int | None = None
    seconds: float = 0.0
    progress: list[str] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.scanned / self.seconds if self.seconds else 0.0


def stream_consumer(target_stream: str) -> str:
    """Checkpoint name of a new-consumer stream's export."""
    return f"stream:{target_stream}"


def ensure_stream(client: Any, name: str, shards: int, deadline_s: float = 60.0) -> bool:
    """Create the stream (True) or accept an existing one with the same shard count (False)."""
    try:
        summary = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        client.create_stream(StreamName=name, ShardCount=shards)
        summary, created = {"StreamStatus": "CREATING"}, True
    else:
        created = False
        if summary["OpenShardCount"] != shards:
            raise StreamRequestError(
                f"stream {name!r} exists with {summary['OpenShardCount']} open shards, not {shards}: "
                "choose another name or ask for the same shard count"
            )
    if summary["StreamStatus"] != "ACTIVE":
        wait_until_active(client, name, deadline_s)
    return created


def export_history(
    esdb: EventStoreDBClient,
    kinesis: Any,
    target_stream: str,
    history_filter: HistoryFilter,
    *,
    shards: int = 1,
    load_checkpoint: Callable[[], int | None],
    save_checkpoint: Callable[[int], None],
    page_size: int = 10_000,
    log: Callable[[str], None] = lambda _: None,
) -> ExportReport:
    """Publish the filtered history to ``target_stream``, resuming from the saved checkpoint."""
    report = ExportReport(target_stream)
    report.created_stream = ensure_stream(kinesis, target_stream, shards)
    publisher = KinesisPublisher(kinesis, target_stream, shard_refresh_s=1.0)
    position = report.resumed_from = load_checkpoint()
    started = time.monotonic()
    while True:
        page = read_all_after(esdb, position, history_filter.event_types, page_size)
        if not page:
            break
        records = []
        for event in page:
            parsed = parse_event(event.data)
            if isinstance(parsed, Rejection):
                raise StreamRequestError(
                    f"event at position {event.commit_position} in {event.stream_name} does not parse "
                    f"({parsed.reason.value}: {parsed.detail}); fix or replay it before exporting"
                )
            if history_filter.matches(event.stream_name, parsed.member_id, parsed.occurred_at):
                records.append(UserRecord(parsed.member_id, event.data))
        publisher.put(records)
        position = int(page[-1].commit_position)
        if report.published + len(records) or report.resumed_from is not None:
            save_checkpoint(
                position
            )  # not before the first match: a filter that matches nothing leaves no trace
        report.scanned += len(page)
        report.published += len(records)
        elapsed = time.monotonic() - started
        message = (
            f"{target_stream}: scanned {report.scanned}, published {report.published}, position {position}, "
            f"{report.scanned / elapsed if elapsed else 0:,.0f} events/s"
        )
        report.progress.append(message)
        log(message)
        if len(page) < page_size:
            break
    report.position = position
    report.seconds = time.monotonic() - started
    if report.published == 0 and report.resumed_from is None:
        raise StreamRequestError(
            f"the filter matched no event in EventStoreDB (scanned {report.scanned} of the requested types): "
            f"nothing was published to {target_stream!r}"
        )
    return report
