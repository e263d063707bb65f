"""The retry policy: capped exponential backoff with full jitter, reset by progress (no endpoints)."""

from __future__ import annotations

import random

import pytest

from cdr_platform.sources.backoff import Backoff

pytestmark = pytest.mark.unit


def test_ceilings_double_from_the_base_up_to_the_cap() -> None:
    backoff = Backoff(base_s=0.5, cap_s=30.0, rng=random.Random(1))
    ceilings = []
    for _ in range(10):
        ceilings.append(backoff.ceiling())
        backoff.next_delay()
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]


def test_every_delay_lies_in_zero_to_its_ceiling_and_never_exceeds_the_cap() -> None:
    backoff = Backoff(base_s=0.5, cap_s=30.0, rng=random.Random(2))
    for _ in range(500):
        ceiling = backoff.ceiling()
        assert 0.0 <= backoff.next_delay() <= ceiling <= 30.0


def test_delays_are_jittered_over_the_whole_window() -> None:
    """Full jitter: at the cap, delays spread over [0, cap] instead of clustering at one value."""
    backoff = Backoff(base_s=1.0, cap_s=8.0, rng=random.Random(3), failures=10)
    delays = [backoff.next_delay() for _ in range(400)]
    assert len(set(delays)) == len(delays)
    assert min(delays) < 0.1 * 8.0
    assert max(delays) > 0.9 * 8.0
    assert 0.4 * 8.0 < sum(delays) / len(delays) < 0.6 * 8.0


def test_two_clients_failing_together_do_not_retry_in_step() -> None:
    first, second = Backoff(rng=random.Random(4)), Backoff(rng=random.Random(5))
    assert [first.next_delay() for _ in range(5)] != [second.next_delay() for _ in range(5)]


def test_reset_after_progress_starts_again_from_the_base() -> None:
    backoff = Backoff(base_s=0.5, cap_s=30.0, rng=random.Random(6))
    for _ in range(8):
        backoff.next_delay()
    assert backoff.ceiling() == 30.0
    backoff.reset()
    assert backoff.failures == 0
    assert backoff.ceiling() == 0.5
    assert backoff.next_delay() <= 0.5


def test_a_very_long_outage_stays_at_the_cap() -> None:
    backoff = Backoff(base_s=0.5, cap_s=30.0, failures=100_000)
    assert backoff.ceiling() == 30.0
    assert 0.0 <= backoff.next_delay() <= 30.0


@pytest.mark.parametrize(("base_s", "cap_s"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_a_nonsensical_policy_is_refused(base_s: float, cap_s: float) -> None:
    with pytest.raises(ValueError, match="base_s"):
        Backoff(base_s=base_s, cap_s=cap_s)
