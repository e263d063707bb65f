"""The relay's heartbeat: a record on every open shard saying through which event time it has published.

Why: the executives' as-of time is the minimum, over the open shards, of the latest opening event
landed from each (``OPENING_EVENT_TYPES``), minus the in-flight allowance. A shard that goes a while
without an opening event (a quiet hour, few members on it) would hold that minimum back although
nothing is missing from it. The relay knows better: it reads $all in commit order, so once Kinesis
has acknowledged everything it read before an opening event of time T, every shard holds all of it.
It then puts a heartbeat carrying T on each open shard, after those records, so a consumer that has
read a shard through the heartbeat has read everything the relay published before it, and can treat
the shard as if an opening event of time T had landed from it.

A heartbeat is one plain (not aggregated) Kinesis record with partition key ``HEARTBEAT_PARTITION_KEY``,
routed to its shard by an explicit hash key, and JSON data starting ``{"relay_heartbeat":``. It is
recognised by both, so an event of a member whose id happens to equal the key is still an event.
Landing stores the latest heartbeat per shard with the shard's checkpoint; nothing else reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from cdr_platform.events import OPENING_EVENT_TYPES

HEARTBEAT_PARTITION_KEY = "$relay-heartbeat"
_PREFIX = b'{"relay_heartbeat":'


@dataclass(frozen=True)
class Heartbeat:
    published_through: datetime
    """The latest opening event time among everything the relay had published before this record."""
    commit_position: int | None
    """The relay's position in $all when it sent the heartbeat (for people reading the stream)."""


def encode_heartbeat(heartbeat: Heartbeat) -> bytes:
    body = {
        "published_through": heartbeat.published_through.isoformat(),
        "commit_position": heartbeat.commit_position,
    }
    return _PREFIX + json.dumps(body, separators=(",", ":")).encode() + b"}"


def decode_heartbeat(partition_key: str, data: bytes) -> Heartbeat | None:
    """The heartbeat this Kinesis record is, or None when it is anything else (an event, an aggregate)."""
    if partition_key != HEARTBEAT_PARTITION_KEY or not data.startswith(_PREFIX):
        return None
    try:
        body = json.loads(data)["relay_heartbeat"]
        through = datetime.fromisoformat(body["published_through"])
        position = body.get("commit_position")
    except (ValueError, KeyError, TypeError):
        return None
    if through.tzinfo is None or not (position is None or isinstance(position, int)):
        return None
    return Heartbeat(through, position)


def opening_time(event_type: str, data: bytes) -> datetime | None:
    """The event time of an opening event's JSON, or None for another type or unreadable data.

    Unreadable data is the landing's business (it dead-letters the record); here it only moves nothing.
    """
    if event_type not in OPENING_EVENT_TYPES:
        return None
    try:
        value = json.loads(data)["occurred_at"]
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except (ValueError, KeyError, TypeError):
        return None
    return moment if moment is not None and moment.tzinfo is not None else None
