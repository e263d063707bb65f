"""The executives' dashboard in a real headless Chromium: the numbers on the page are the mart's.

``cdr-platform dashboard`` is started as a subprocess on the built lake and a free port; Debian's
``chromium`` loads the page, runs Dash's JavaScript (``--virtual-time-budget`` lets the page fetch
its layout and render) and dumps the DOM, whose figures are compared with the marts read directly.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from cdr_platform.analytics.dashboard import (
    MIN_ANSWERED_FOR_CELL,
    WORST_CELLS,
    MartsReader,
    body,
    format_as_of,
    format_change,
    format_value,
)
from cdr_platform.lake.connection import LAKE_ALIAS, connect_lake
from cdr_platform.lake.schema import ensure_schema
from cdr_platform.settings import load_settings
from tests.transform.conftest import BuiltLake

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_DEADLINE_S = 120.0


class _TextsById(HTMLParser):
    """The text inside each element that has an id (elements with ids here hold text, or text
    inside children)."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: dict[str, str] = {}
        self._open: list[tuple[str | None, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"br", "img", "input", "meta", "link", "hr", "path", "rect", "line"}:
            return
        self._open.append((dict(attrs).get("id"), []))

    def handle_endtag(self, tag: str) -> None:
        if tag in {"br", "img", "input", "meta", "link", "hr", "path", "rect", "line"} or not self._open:
            return
        element_id, parts = self._open.pop()
        text = "".join(parts)
        if element_id is not None:
            self.texts[element_id] = text.strip()
        if self._open:
            self._open[-1][1].append(text)

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][1].append(data)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the dashboard exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(
        f"the dashboard did not serve {url} within {START_DEADLINE_S:.0f} s: {log.read_text()[-2000:]}"
    )


@pytest.fixture(scope="module")
def dashboard_url(built_lake: BuiltLake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("dashboard") / "dashboard.log"
    env = {
        **os.environ,
        "CDR_LAKE_CATALOG": built_lake.settings.resolved_lake_catalog,
        "CDR_LAKE_DATA_PATH": built_lake.settings.resolved_lake_data_path,
    }
    command = [sys.executable, "-m", "cdr_platform.cli", "dashboard", "--port", str(port)]
    with log.open("wb") as handle:
        process = subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_until_serving(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.skip(
            "Debian's chromium is not installed (`make install` installs it: apt-get install -y chromium)"
        )
    return found


def _rendered_dom(url: str, profile: Path) -> str:
    command = [
        _chromium(),
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--virtual-time-budget=20000",
        "--dump-dom",
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_the_page_shows_the_marts_numbers(built_lake: BuiltLake, dashboard_url: str, tmp_path: Path) -> None:
    dom = _rendered_dom(dashboard_url, tmp_path / "chromium-profile")
    parser = _TextsById()
    parser.feed(dom)
    texts = parser.texts

    kpis = built_lake.query("SELECT * FROM marts.rpt_exec_kpis_intraday ORDER BY kpi_order")
    assert len(kpis) == 4
    assert texts.get("as-of") == format_as_of(pd.Timestamp(kpis.as_of.iloc[0]).to_pydatetime())
    for row in kpis.itertuples():
        today = None if pd.isna(row.value_today) else float(row.value_today)
        week = None if pd.isna(row.value_same_time_last_week) else float(row.value_same_time_last_week)
        change = None if pd.isna(row.change_ratio) else float(row.change_ratio)
        assert texts.get(f"kpi-{row.kpi}-today") == format_value(today, row.unit), row.kpi
        assert texts.get(f"kpi-{row.kpi}-last-week") == format_value(week, row.unit), row.kpi
        assert texts.get(f"kpi-{row.kpi}-change") == format_change(change), row.kpi
    assert float(kpis.set_index("kpi").loc["calls", "value_today"]) > 0  # not a page of zeros

    # The hourly chart rendered (Plotly draws an SVG) and the worst cells are today's.
    assert 'id="hourly-chart"' in dom and "main-svg" in dom
    cells = built_lake.query(
        f"""
        SELECT cell_id, sum(dropped_calls) AS dropped, sum(answered_calls) AS answered
        FROM marts.fct_cell_kpis_hourly
        WHERE hour_start >= (SELECT max(today_start) FROM marts.rpt_exec_kpis_intraday)
          AND hour_start <= (SELECT max(as_of) FROM marts.rpt_exec_kpis_intraday)
        GROUP BY cell_id HAVING sum(answered_calls) >= {MIN_ANSWERED_FOR_CELL}
        ORDER BY sum(dropped_calls) / sum(answered_calls) DESC, cell_id LIMIT {WORST_CELLS}
        """
    )
    shown = [texts.get(f"cell-{rank}", "") for rank in range(1, len(cells) + 1)]
    for text, cell in zip(shown, cells.itertuples(), strict=True):
        assert text.startswith(cell.cell_id) and f"{int(cell.dropped):,d}" in text, (text, cell)
    assert f"cell-{len(cells) + 1}" not in texts


def _waiting_text(reader: MartsReader) -> str | None:
    """The waiting notice of the page body, or None when the body shows figures."""
    component = body(reader)
    if getattr(component, "id", None) != "waiting":
        return None
    return " ".join(str(child.children) for child in component.children)


def test_a_waiting_dashboard_says_what_it_waits_for_until_the_marts_are_built(
    built_lake: BuiltLake, tmp_path: Path
) -> None:
    """``--wait`` (how ``make dev`` starts it): before any lake, then a lake without marts, the page
    says what it waits for, reading again on each refresh; a reader of a built lake shows figures."""
    settings = load_settings(environ={"CDR_DATA_DIR": str(tmp_path)})
    reader = MartsReader(settings)
    waiting = _waiting_text(reader)
    assert waiting is not None and "no lake at" in waiting
    con = connect_lake(settings.resolved_lake_catalog, settings.resolved_lake_data_path)
    ensure_schema(con)  # the raw layer exists, no dbt build yet
    waiting = _waiting_text(reader)
    assert waiting is not None and "no marts yet" in waiting
    con.execute(
        f"CREATE SCHEMA IF NOT EXISTS {LAKE_ALIAS}.marts"
    )  # the build has begun, the exec views not yet
    waiting = _waiting_text(reader)
    assert waiting is not None and "rpt_exec" in waiting
    con.close()
    built = MartsReader(built_lake.settings)
    assert _waiting_text(built) is None
    built.close()
    reader.close()


def test_a_reader_computes_the_figures_again_only_after_a_commit(built_lake: BuiltLake) -> None:
    reader = MartsReader(built_lake.settings)
    try:
        first = reader.read()
        assert reader.read() is first  # nothing committed since: the same figures, not recomputed
        settings = built_lake.settings
        con = connect_lake(settings.resolved_lake_catalog, settings.resolved_lake_data_path)
        try:
            con.execute("INSERT INTO meta.replay_ranges VALUES ('dashboard-cache-probe', 'none')")
            con.execute("DELETE FROM meta.replay_ranges WHERE name = 'dashboard-cache-probe'")
        finally:
            con.close()
        again = reader.read()
        assert again is not first and again.as_of == first.as_of  # read again after the commits
    finally:
        reader.close()
