"""The main job end to end, smaller: every step runs and every check passes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cdr_platform.devtools.demo import DemoConfig, period_end, run_demo
from cdr_platform.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_period_ends_at_the_latest_evening() -> None:
    assert period_end(datetime(2026, 3, 4, 19, 5, tzinfo=UTC)) == datetime(2026, 3, 4, 18, tzinfo=UTC)
    assert period_end(datetime(2026, 3, 4, 0, 43, tzinfo=UTC)) == datetime(2026, 3, 3, 18, tzinfo=UTC)


def test_demo_runs_start_to_finish(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path)
    assert run_demo(settings, DemoConfig(members=60)) == 0
    out = capsys.readouterr().out
    repaired = next(line for line in out.splitlines() if "reconciliation:" in line)
    missing, fixed = int(repaired.split()[1]), int(repaired.split("hours, ")[1].split()[0])
    assert missing > 0 and fixed == missing  # the relay dropped records; all came back from EventStoreDB
    assert "dbt tests passed" in out and "FAILED" not in out
    assert (tmp_path / "demo" / "exec_kpis.svg").read_text().startswith("<svg")
