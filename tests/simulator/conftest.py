"""Shared simulator fixtures: small operators and a sink that keeps what it is given."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from cdr_platform.simulator.producers import PendingAppends, StreamAppend

START = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday


class _Done:
    def __init__(self, count: int) -> None:
        self.count = count

    def wait(self) -> int:
        return self.count


class RecordingSink:
    """Keeps every append, in submission order."""

    def __init__(self) -> None:
        self.appends: list[StreamAppend] = []

    def submit(self, appends: Sequence[StreamAppend]) -> PendingAppends:
        self.appends.extend(appends)
        return _Done(sum(len(a.events) for a in appends))

    def close(self) -> None:
        return None
