"""The demo command end to end, small: every step runs, the report prints, the chart is written.

What the steps compute is tested where it lives (the raw layer against ground truth in
``test_raw_layer_end_to_end.py``, the marts in ``tests/transform/``); this covers the command.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cdr_platform.devtools.demo import DemoConfig, period_end, run_demo
from cdr_platform.settings import load_settings


@pytest.mark.unit
def test_period_ends_at_the_latest_evening() -> None:
    assert period_end(datetime(2026, 3, 4, 19, 5, tzinfo=UTC)) == datetime(2026, 3, 4, 18, tzinfo=UTC)
    assert period_end(datetime(2026, 3, 4, 0, 43, tzinfo=UTC)) == datetime(2026, 3, 3, 18, tzinfo=UTC)


@pytest.mark.integration
@pytest.mark.slow
def test_demo_runs_start_to_finish(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path)
    assert run_demo(settings, DemoConfig(members=40)) == 0
    out = capsys.readouterr().out
    steps = [line for line in out.splitlines() if line.startswith("== ")]
    assert [step.split()[1] for step in steps] == [
        "simulate",
        "relay",
        "sensors",
        "reconcile",
        "dbt",
        "report",
    ]
    assert "executive KPIs" in out and "FAILED" not in out
    assert all(figure in out for figure in ("operator figures", "ASR ", "ARPU ", "churn model backtest")), out
    assert (tmp_path / "demo" / "exec_kpis.svg").read_text().startswith("<svg")
