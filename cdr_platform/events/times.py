"""Event times from user input (CLI flags, launchpad config): ISO 8601 with an explicit offset."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_aware_time(value: str, name: str) -> datetime:
    """``value`` as a UTC datetime; naive or malformed input raises ``ValueError`` naming ``name``.

    Event times are UTC-aware everywhere, so a naive bound would either fail deep inside a
    comparison or silently mean local time; it is refused here, at the edge.
    """
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {value!r} is not an ISO 8601 time") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"{name}: {value!r} needs a timezone, e.g. {value}+00:00")
    return parsed.astimezone(UTC)
