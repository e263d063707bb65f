"""Domain errors raised by the event log; the gRPC services map them to EventStoreDB's wire errors."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ExpectedKind(Enum):
    """The four kinds of optimistic-concurrency expectation EventStoreDB accepts."""

    ANY = "any"
    NO_STREAM = "no_stream"
    EXISTS = "stream_exists"
    REVISION = "revision"


@dataclass(frozen=True, slots=True)
class Expected:
    """An expected stream version: a kind, plus the revision when the kind is REVISION."""

    kind: ExpectedKind
    revision: int = -1

    @property
    def numeric(self) -> int:
        """EventStoreDB's numeric spelling (-2 any, -1 no stream, -4 exists), used in error texts."""
        return {
            ExpectedKind.ANY: -2,
            ExpectedKind.NO_STREAM: -1,
            ExpectedKind.EXISTS: -4,
            ExpectedKind.REVISION: self.revision,
        }[self.kind]


class EventStoreError(Exception):
    """Base class of the errors the dev event store reports to clients."""


class WrongExpectedVersion(EventStoreError):
    """The stream's current revision does not satisfy the expectation; `actual` None means no stream."""

    def __init__(self, stream: str, expected: Expected, actual: int | None) -> None:
        self.stream = stream
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"WrongExpectedVersion. Stream: {stream}, Expected version: {expected.numeric}, "
            f"Actual version: {-1 if actual is None else actual}"
        )


class StreamDeleted(EventStoreError):
    """The stream was tombstoned: it can never be read, written or deleted again."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        super().__init__(f"Event stream '{stream}' is deleted.")


class MaximumAppendSizeExceeded(EventStoreError):
    """One append carried more bytes than the server accepts in a single write."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"Maximum Append Size of {limit} Exceeded.")


class BadRequest(EventStoreError):
    """The request is malformed (missing option, invalid UUID, invalid regex...)."""
