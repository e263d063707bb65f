"""A hook that crashes a landing run at a chosen batch, to test what survives a crash."""

from __future__ import annotations

from collections.abc import Callable


def crash_on_call(n: int, error: BaseException) -> Callable[[object], None]:
    """A ``before_commit`` hook that raises ``error`` on its ``n``-th call (1-based)."""
    calls = 0

    def hook(_: object) -> None:
        nonlocal calls
        calls += 1
        if calls == n:
            raise error

    return hook
