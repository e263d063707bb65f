"""Where a resumable live simulation stands, in a small JSON file beside its ground truth.

The file names the operator (seed, members, model configuration), its period and the clock up to
which every release is acknowledged by EventStoreDB. A restarted run rebuilds the same operator over
the same period and resumes from that clock (``Simulation(resume_from=...)``), so it neither appends
anything twice nor collides with the streams it wrote. The file is replaced atomically after each
acknowledged chunk: a crash between two writes repeats at most one chunk, which is idempotent.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cdr_platform.errors import PlatformError
from cdr_platform.simulator.model import OperatorConfig

STATE_FILE = "live-state.json"


class LiveStateError(PlatformError):
    """The state file belongs to another operator, or cannot be read; the message says what to do."""


@dataclass(frozen=True)
class LiveState:
    """A live run's operator, period and progress."""

    operator: dict[str, Any]
    start: datetime
    days: float
    live_from: datetime
    clock: datetime

    @classmethod
    def new(cls, config: OperatorConfig, start: datetime, days: float, live_from: datetime) -> LiveState:
        return cls(asdict(config), start, days, live_from, start)

    def at(self, clock: datetime) -> LiveState:
        return replace(self, clock=clock)

    def check_same_operator(self, config: OperatorConfig, path: Path) -> None:
        """Refuse to resume with another model: its streams would collide with what was written."""
        wanted = asdict(config)
        changed = sorted(
            key for key in wanted.keys() | self.operator.keys() if wanted.get(key) != self.operator.get(key)
        )
        if changed:
            detail = ", ".join(
                f"{key}: {self.operator.get(key)!r} there, {wanted.get(key)!r} now" for key in changed
            )
            raise LiveStateError(
                f"{path} was written by a live run of another operator ({detail}): run with the same "
                "options to resume it, or remove the file and use another --seed (or a fresh EventStoreDB) "
                "to start over"
            )


def load_live_state(path: Path) -> LiveState | None:
    """The state at ``path``, or None when there is none yet."""
    try:
        raw = json.loads(path.read_text())
        return LiveState(
            operator=raw["operator"],
            start=datetime.fromisoformat(raw["start"]),
            days=float(raw["days"]),
            live_from=datetime.fromisoformat(raw["live_from"]),
            clock=datetime.fromisoformat(raw["clock"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LiveStateError(
            f"cannot read the live simulation's state {path}: {exc}; remove it to start over"
        ) from exc


def save_live_state(path: Path, state: LiveState) -> None:
    """Write ``state`` atomically (a reader sees the old file or the new one, never half of one)."""
    raw = {
        "operator": state.operator,
        "start": state.start.isoformat(),
        "days": state.days,
        "live_from": state.live_from.isoformat(),
        "clock": state.clock.isoformat(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(raw, indent=2) + "\n")
    os.replace(temporary, path)
