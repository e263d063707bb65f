"""The relay's heartbeat: a record on every open shard saying through which event time it has published.

Why: the executives' as-of time is the minimum, over the open shards, of the latest opening event
landed from each (``OPENING_EVENT_TYPES``), minus the in-flight allowance. A shard that goes a while
without an opening event (a quiet hour, few members on it) would hold that minimum back although
nothing is missing from it. The relay knows better: it reads $all in commit order, so once Kinesis
has acknowledged everything it read before an opening event of time T, every shard holds all of it.
It then puts a heartbeat carrying T on each open shard, after those records, so a consumer that has
read a shard through the heartbeat has read everything the relay published before it, and can treat
the shard as if an opening event of time T had landed from it.

Opening events are a clock only while traffic is dense: at night the next one may be many seconds
away. So a producer can append its clock itself: a ``producer_clock`` event (stream
``PRODUCER_CLOCK_STREAM``) whose time T says "everything I release before T is already in $all"
(the simulator appends one after each acknowledged chunk of live traffic). The relay subscribes to
those too, publishes none of them, and takes their time like an opening event's.

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
PRODUCER_CLOCK_TYPE = "producer_clock"
PRODUCER_CLOCK_STREAM = "producer-clock"


@dataclass(frozen=True)
class Heartbeat:
    published_through: datetime
    """The latest producer clock (opening event time or clock tick) the relay had read before this record,
    everything before it published."""
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


def encode_clock_tick(clock: datetime) -> bytes:
    """The data of a ``producer_clock`` event."""
    return json.dumps({"clock": clock.isoformat()}, separators=(",", ":")).encode()


def clock_time(event_type: str, data: bytes) -> datetime | None:
    """The producer's clock an event proves: an opening event's time or a clock tick's; None for any
    other type or unreadable data (that is the landing's business: it dead-letters the record)."""
    if event_type == PRODUCER_CLOCK_TYPE:
        field = "clock"
    elif event_type in OPENING_EVENT_TYPES:
        field = "occurred_at"
    else:
        return None
    try:
        value = json.loads(data)[field]
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except (ValueError, KeyError, TypeError):
        return None
    return moment if moment is not None and moment.tzinfo is not None else None
