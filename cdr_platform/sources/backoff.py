"""Capped exponential backoff with full jitter, for loops that retry an unreachable endpoint.

The n-th consecutive delay is drawn uniformly from [0, min(cap, base * 2**n)] ("full jitter"): many
clients that failed together spread their retries over the whole window instead of returning in step,
and the cap bounds how long a recovered endpoint waits to be used again. ``reset`` after progress makes
the next failure start again from ``base``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

MAX_EXPONENT = 60
"""Beyond this the ceiling is the cap anyway; bounding it keeps ``2**n`` a small number forever."""


@dataclass
class Backoff:
    """Delays for consecutive failures; not thread-safe (one per retry loop)."""

    base_s: float = 0.5
    cap_s: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0
    """Consecutive failures so far (delays handed out since the last ``reset``)."""

    def __post_init__(self) -> None:
        if not 0 < self.base_s <= self.cap_s:
            raise ValueError(
                f"backoff needs 0 < base_s <= cap_s, got base_s={self.base_s}, cap_s={self.cap_s}"
            )

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        return min(self.cap_s, self.base_s * 2 ** min(self.failures, MAX_EXPONENT))

    def next_delay(self) -> float:
        """The delay before the next attempt, in seconds; counts one more consecutive failure."""
        delay = self.rng.uniform(0.0, self.ceiling())
        self.failures += 1
        return delay

    def reset(self) -> None:
        """Progress was made: the next failure waits at most ``base_s`` again."""
        self.failures = 0
