"""Server-side filters for $all reads and subscriptions, as EventStoreDB applies them.

A filter looks at either the stream name or the event type. A regex is matched with ``re.search``
(unanchored, like the real server's .NET ``Regex.IsMatch``); prefixes with ``str.startswith``.
Results are cached per name, since a log repeats the same few names and types many times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from esdbclient.protos.Grpc import persistent_pb2, streams_pb2

from cdr_platform.devstack.eventstore.errors import BadRequest
from cdr_platform.devstack.eventstore.storage import EventRecord

_CACHE_LIMIT = 100_000

FilterOptions = streams_pb2.ReadReq.Options.FilterOptions | persistent_pb2.CreateReq.AllOptions.FilterOptions


@dataclass(slots=True)
class EventFilter:
    """Selects records by stream name or event type; ``checkpoint_interval`` is window x multiplier."""

    by_stream_name: bool
    regex: str = ""
    prefixes: tuple[str, ...] = ()
    checkpoint_interval: int = 0
    _pattern: re.Pattern[str] | None = field(default=None, repr=False)
    _cache: dict[str, bool] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.regex and not self.prefixes:
            raise BadRequest("a filter needs a regex or at least one prefix")
        if self.regex:
            try:
                self._pattern = re.compile(self.regex)
            except re.error as error:
                raise BadRequest(f"invalid filter regex {self.regex!r}: {error}") from None

    def matches(self, record: EventRecord) -> bool:
        """True when the record passes the filter."""
        key = record.stream if self.by_stream_name else record.event_type
        hit = self._cache.get(key)
        if hit is None:
            if self._pattern is not None:
                hit = self._pattern.search(key) is not None
            else:
                hit = key.startswith(self.prefixes)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def to_json(self) -> dict[str, object]:
        """Plain form, for storing a persistent subscription definition."""
        return {
            "by_stream_name": self.by_stream_name,
            "regex": self.regex,
            "prefixes": list(self.prefixes),
            "checkpoint_interval": self.checkpoint_interval,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> EventFilter:
        """Inverse of to_json."""
        prefixes = data.get("prefixes") or []
        assert isinstance(prefixes, list)
        return cls(
            by_stream_name=bool(data["by_stream_name"]),
            regex=str(data.get("regex") or ""),
            prefixes=tuple(str(p) for p in prefixes),
            checkpoint_interval=int(str(data.get("checkpoint_interval") or 0)),
        )


def filter_from_options(options: FilterOptions) -> EventFilter:
    """Build a filter from a Read or persistent Create request's FilterOptions."""
    which = options.WhichOneof("filter")
    if which is None:
        raise BadRequest("filter options need a stream_identifier or event_type expression")
    expression = options.stream_identifier if which == "stream_identifier" else options.event_type
    window = options.max if options.WhichOneof("window") == "max" else 1
    multiplier = options.checkpointIntervalMultiplier or 1
    return EventFilter(
        by_stream_name=which == "stream_identifier",
        regex=expression.regex,
        prefixes=tuple(expression.prefix),
        checkpoint_interval=max(1, window) * multiplier,
    )
