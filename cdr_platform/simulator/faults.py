"""Fault injection: what can go wrong between producers, EventStoreDB and Kinesis, on purpose.

Each fault is a rate decided per event (or per transaction for late events) by hashing the fault seed,
the fault kind and the event's id, never by a shared random stream. So a decision does not depend on
batch boundaries, and a relay that restarts and re-reads an event decides exactly as before: the ground
truth stays true across restarts (the fault log may list an entry twice; readers deduplicate it).

Relay-side faults: ``drop`` (not published, yet the checkpoint advances: only a repair from EventStoreDB
recovers it), ``duplicate`` (published twice), ``reorder`` (published up to ``reorder_window`` records
later than its position), ``malformed`` (an extra broken record next to the event: not JSON, a missing
field, an unknown event type, or over 64 KiB) and a reshard of the Kinesis stream mid-run.
Producer-side fault: ``late`` (a whole call/SMS/data transaction is appended hours after it happened,
keeping its original ``occurred_at``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from cdr_platform.events import MAX_EVENT_BYTES
from cdr_platform.events.framing import UserRecord
from cdr_platform.sources.relay import InjectedBatch, SourceEvent

MalformedKind = Literal["not_json", "missing_field", "unknown_event_type", "oversize"]
MALFORMED_KINDS: tuple[MalformedKind, ...] = ("not_json", "missing_field", "unknown_event_type", "oversize")
FaultKind = Literal["drop", "duplicate", "reorder", "malformed", "reshard"]
MALFORMED_NAMESPACE = uuid.UUID("0b5d3f1e-9a61-5c1f-8f0e-3d2c4b6a7e91")


@dataclass(frozen=True)
class FaultConfig:
    """Rates are probabilities per event (per transaction for ``late_rate``); all zero by default."""

    seed: int = 0
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    reorder_window: int = 20
    malformed_rate: float = 0.0
    late_rate: float = 0.0
    late_min_hours: float = 1.0
    late_max_hours: float = 6.0
    reshard_after_events: int | None = None
    reshard_to_shards: int | None = None  # None: double the open shards

    def __post_init__(self) -> None:
        for name in ("drop_rate", "duplicate_rate", "reorder_rate", "malformed_rate", "late_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.reorder_window < 1:
            raise ValueError(f"reorder_window must be at least 1, got {self.reorder_window}")
        if not 0 <= self.late_min_hours <= self.late_max_hours:
            raise ValueError("need 0 <= late_min_hours <= late_max_hours")

    @property
    def relay_faults_enabled(self) -> bool:
        rates = (self.drop_rate, self.duplicate_rate, self.reorder_rate, self.malformed_rate)
        return any(rates) or self.reshard_after_events is not None

    def inject(self, batch: Sequence[SourceEvent], events_published: int, resharded: bool) -> InjectedBatch:
        """The relay's ``FaultInjector``: this batch with its faults, and a reshard once, mid-batch."""
        records, entries = apply_relay_faults(batch, self)
        after = self.reshard_after_events
        if after is None or resharded or events_published + len(records) < after:
            return InjectedBatch(records, [e.to_json() for e in entries])
        split = max(0, after - events_published)  # reshard mid-batch, at the configured point
        return InjectedBatch(records, [e.to_json() for e in entries], split, self.reshard_to_shards)

    def reshard_log_line(self, from_shards: int, to_shards: int, after_events: int) -> str:
        detail = {"from_shards": from_shards, "to_shards": to_shards, "after_events": after_events}
        return FaultLogEntry("reshard", detail=detail).to_json()


def fault_draw(seed: int, kind: str, key: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, kind, key)."""
    digest = hashlib.blake2b(f"{seed}:{kind}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64


def late_delay_hours(faults: FaultConfig, correlation_id: str) -> float | None:
    """Hours a transaction is held back before being appended, or None when it is on time."""
    if faults.late_rate <= 0 or fault_draw(faults.seed, "late", correlation_id) >= faults.late_rate:
        return None
    span = faults.late_max_hours - faults.late_min_hours
    return faults.late_min_hours + span * fault_draw(faults.seed, "late-delay", correlation_id)


@dataclass(frozen=True, slots=True)
class MalformedRecord:
    kind: MalformedKind
    record_id: str  # the event_id written into the record, when it has one
    partition_key: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def malformed_record(seed: int, source_event_id: str, partition_key: str, source: bytes) -> MalformedRecord:
    """A broken record derived from a real event; its own id never collides with a real event's."""
    kind = MALFORMED_KINDS[int(fault_draw(seed, "malformed-kind", source_event_id) * len(MALFORMED_KINDS))]
    record_id = str(uuid.uuid5(MALFORMED_NAMESPACE, f"{seed}:{source_event_id}"))
    if kind == "not_json":
        data = b'{"event_id": "' + record_id.encode() + b'", "event_type": "call_ended", '  # truncated
        return MalformedRecord(kind, record_id, partition_key, data)
    document = json.loads(source)
    document["event_id"] = record_id
    if kind == "missing_field":
        del document["occurred_at"]
    elif kind == "unknown_event_type":
        document["event_type"] = "call_teleported"
    else:
        document["padding"] = "x" * (MAX_EVENT_BYTES + 1024)
    return MalformedRecord(
        kind, record_id, partition_key, json.dumps(document, separators=(",", ":")).encode()
    )


@dataclass(frozen=True)
class FaultLogEntry:
    """One injected relay fault, as a JSON line of the relay's fault log."""

    fault: FaultKind
    event_id: str | None = None
    event_type: str | None = None
    member_id: str | None = None
    commit_position: int | None = None
    detail: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)


def read_fault_log(path: Path) -> list[FaultLogEntry]:
    """Entries of a relay fault log, each once (a restarted relay re-logs what it re-reads)."""
    if not path.exists():
        return []
    seen: set[str] = set()
    entries = []
    for line in path.read_text().splitlines():
        if line.strip() and line not in seen:
            seen.add(line)
            entries.append(FaultLogEntry(**json.loads(line)))
    return entries


def apply_relay_faults(
    batch: Sequence[SourceEvent], faults: FaultConfig
) -> tuple[list[UserRecord], list[FaultLogEntry]]:
    """The records to publish for ``batch`` (in publish order) and the faults injected into them.

    Reordered records move ``shift`` slots later, duplicates follow ``reorder_window`` slots later, and a
    malformed record sits right after the event it was derived from (which is still published).
    """
    if not faults.relay_faults_enabled:
        return [UserRecord(e.member_id, e.data) for e in batch], []
    seed = faults.seed
    placed: list[tuple[float, UserRecord]] = []
    entries: list[FaultLogEntry] = []

    def entry(fault: FaultKind, event: SourceEvent, **detail: object) -> FaultLogEntry:
        return FaultLogEntry(
            fault, event.event_id, event.event_type, event.member_id, event.commit_position, detail
        )

    for index, event in enumerate(batch):
        if faults.drop_rate and fault_draw(seed, "drop", event.event_id) < faults.drop_rate:
            entries.append(entry("drop", event))
            continue
        slot = float(index)
        if faults.reorder_rate and fault_draw(seed, "reorder", event.event_id) < faults.reorder_rate:
            shift = 1 + int(fault_draw(seed, "reorder-shift", event.event_id) * faults.reorder_window)
            slot += shift + 0.5
            entries.append(entry("reorder", event, shift=shift))
        record = UserRecord(event.member_id, event.data)
        placed.append((slot, record))
        if faults.duplicate_rate and fault_draw(seed, "duplicate", event.event_id) < faults.duplicate_rate:
            placed.append((index + faults.reorder_window + 0.25, record))
            entries.append(entry("duplicate", event))
        if faults.malformed_rate and fault_draw(seed, "malformed", event.event_id) < faults.malformed_rate:
            bad = malformed_record(seed, event.event_id, event.member_id, event.data)
            placed.append((index + 0.75, UserRecord(bad.partition_key, bad.data)))
            entries.append(
                entry("malformed", event, kind=bad.kind, record_id=bad.record_id, sha256=bad.sha256)
            )
    placed.sort(key=lambda pair: pair[0])
    return [record for _, record in placed], entries
