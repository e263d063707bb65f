"""The relay's heartbeat: a record on every open shard saying through which event time it has published.

Why: the executives' as-of time is the minimum, over the open shards, of the latest opening event
landed from each (``OPENING_EVENT_TYPES``), minus the in-flight allowance. A shard that goes a while
without an opening event (a quiet hour, few members on it) would hold that minimum back although
nothing is missing from it. The relay knows better: it reads $all in commit order, so once Kinesis
has acknowledged everything it read up to a producer clock of time T (``ClockReading``), every shard
holds all of it. It then puts a heartbeat carrying T on each open shard, after those records, so a
consumer that has read a shard through the heartbeat has read everything the relay published before
it, and can treat the shard as if an opening event of time T had landed from it.

Opening events are a clock only while traffic is dense: at night the next one may be many seconds
away. So a producer can append its clock itself: a ``producer_clock`` event (stream
``PRODUCER_CLOCK_STREAM``) whose time T says "everything I release before T is already in $all"
(the simulator appends one after each acknowledged chunk of live traffic). The relay subscribes to
those too, publishes none of them, and takes their time like an opening event's.

A heartbeat is one plain (not aggregated) Kinesis record with partition key ``HEARTBEAT_PARTITION_KEY``,
routed to its shard by an explicit hash key, and JSON data starting ``{"relay_heartbeat":``. It is
recognised by both, so an event of a member whose id happens to equal the key is still an event.
Landing stores the latest heartbeat per shard with the shard's checkpoint and lands no row for it
(``event_records`` leaves it out); to the sensors' probes it is a record like any other (news to land).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from cdr_platform.events import OPENING_EVENT_TYPES, Rejection, parse_event
from cdr_platform.events.framing import UserRecord, deaggregate

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


def event_records(partition_key: str, data: bytes) -> list[UserRecord]:
    """The events a Kinesis record carries (de-aggregated); none for a relay heartbeat."""
    if decode_heartbeat(partition_key, data) is not None:
        return []
    return deaggregate(partition_key, data)


def encode_clock_tick(clock: datetime) -> bytes:
    """The data of a ``producer_clock`` event."""
    return json.dumps({"clock": clock.isoformat()}, separators=(",", ":")).encode()


def clock_tick_time(data: bytes) -> datetime | None:
    """The time of a ``producer_clock`` event's data, or None when it is unreadable or naive."""
    try:
        value = json.loads(data)["clock"]
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except (ValueError, KeyError, TypeError):
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b > a) else a


@dataclass
class ClockReading:
    """The producer clock as the relay has read it: the latest ``producer_clock`` tick, or the latest opening
    event time that two members' events reach, whichever is later.

    Opening events count only if they parse as events (a record landing dead-letters never moves it),
    and one member's events alone cannot move it: the clock is the second latest time over distinct
    members, so a single event dated far ahead (a producer's bug) does not move every shard's as-of
    time with it. A producer's tick is trusted: it is the producer's own statement.
    """

    tick: datetime | None = None
    latest: tuple[tuple[datetime, str], ...] = ()
    """The two latest (opening time, member) of distinct members, latest first."""

    def read(self, event_type: str, data: bytes) -> None:
        if event_type == PRODUCER_CLOCK_TYPE:
            self.tick = _later(self.tick, clock_tick_time(data))
        elif event_type in OPENING_EVENT_TYPES:
            event = parse_event(data)
            if not isinstance(event, Rejection):
                self._offer(event.occurred_at, event.member_id)

    def _offer(self, moment: datetime, member: str) -> None:
        kept = [(t, m) for t, m in self.latest if m != member]
        mine = max([t for t, m in self.latest if m == member] + [moment])
        self.latest = tuple(sorted([*kept, (mine, member)], reverse=True)[:2])

    @property
    def time(self) -> datetime | None:
        agreed = self.latest[1][0] if len(self.latest) == 2 else None
        return _later(self.tick, agreed)
