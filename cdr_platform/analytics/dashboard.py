"""The executives' dashboard: ``cdr-platform dashboard``, a read-only web page over the marts.

It shows today's KPIs beside the same time last week, today's calls hour by hour against last
week's, the cells with the worst dropped-call rate today, and the as-of time up to which every source
is complete. It reads the marts only (``rpt_exec_kpis_intraday``, ``rpt_exec_kpis_hourly``,
``rpt_exec_as_of``, ``fct_cell_kpis_hourly``) through a read-only lake session, so it
never writes and never blocks landing or dbt. The exec marts are views that read the raw layer at
query time, so each refresh (every ``refresh_s`` seconds, in the browser) shows what landed a moment
ago, without dbt runs.

Dash (Flask + React + Plotly) renders the page: the server computes the whole page on each load and
each refresh, so the browser needs nothing but the JavaScript Dash serves itself (no CDN).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from cdr_platform.analytics.sql_shell import MartsNotBuiltError, open_marts_session
from cdr_platform.lake.connection import current_snapshot
from cdr_platform.settings import Settings

DEFAULT_PORT = 8050
DEFAULT_REFRESH_S = 5.0
WORST_CELLS = 5
MIN_ANSWERED_FOR_CELL = 5
"""A cell needs this many answered calls today before its dropped-call rate is ranked."""


@dataclass(frozen=True)
class Kpi:
    kpi: str
    label: str
    unit: str
    today: float | None
    last_week: float | None
    change_ratio: float | None


@dataclass(frozen=True)
class HourPoint:
    hour_of_day: int
    calls_today: int
    calls_last_week: int


@dataclass(frozen=True)
class CellRate:
    cell_id: str
    dropped_calls: int
    answered_calls: int
    dropped_call_rate: float


@dataclass(frozen=True)
class DashboardData:
    """One consistent read of what the page shows (each query sees the latest committed snapshot)."""

    as_of: datetime | None
    kpis: list[Kpi]
    hours: list[HourPoint]
    worst_cells: list[CellRate] | None
    """None until the network marts (``fct_cell_kpis_hourly``) are built."""
    bounding_sources: int


def read_dashboard(con: duckdb.DuckDBPyConnection) -> DashboardData:
    """Read the page's figures from the marts (``con`` is a marts session, see ``open_marts_session``)."""
    kpi_rows = con.execute(
        "SELECT kpi, kpi_label, unit, value_today, value_same_time_last_week, change_ratio, as_of, "
        "today_start FROM rpt_exec_kpis_intraday ORDER BY kpi_order"
    ).fetchall()
    kpis = [Kpi(*row[:6]) for row in kpi_rows]
    as_of = kpi_rows[0][6] if kpi_rows else None
    hours = [
        HourPoint(*row)
        for row in con.execute(
            "SELECT hour_of_day, calls_today, calls_same_time_last_week FROM rpt_exec_kpis_hourly "
            "ORDER BY hour_of_day"
        ).fetchall()
    ]
    cells: list[CellRate] | None = []
    if as_of is not None:
        try:
            cells = [
                CellRate(*row)
                for row in con.execute(
                    """
                    SELECT cell_id, sum(dropped_calls), sum(answered_calls),
                           sum(dropped_calls) / sum(answered_calls)
                    FROM fct_cell_kpis_hourly
                    WHERE hour_start >= ? AND hour_start <= ?
                    GROUP BY cell_id HAVING sum(answered_calls) >= ?
                    ORDER BY 4 DESC, cell_id LIMIT ?
                    """,
                    [kpi_rows[0][7], as_of, MIN_ANSWERED_FOR_CELL, WORST_CELLS],
                ).fetchall()
            ]
        except duckdb.CatalogException:
            cells = None  # the network marts are built on the automation's cadence; not yet
    bounding = con.execute("SELECT bounding_sources FROM rpt_exec_as_of").fetchone()
    return DashboardData(as_of, kpis, hours, cells, int(bounding[0]) if bounding else 0)


def format_value(value: float | None, unit: str) -> str:
    """How the page writes a KPI value (the browser test compares these strings with the mart)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "ratio":
        return f"{value:.2%}"
    return f"{value:,.2f}" if unit == "currency" else f"{value:,.0f}"


def format_change(ratio: float | None) -> str:
    return "n/a" if ratio is None or math.isnan(ratio) else f"{ratio:+.1%}"


def format_as_of(as_of: datetime | None) -> str:
    return "no data yet" if as_of is None else f"{as_of:%Y-%m-%d %H:%M:%S} UTC"


class MartsReader:
    """One read-only marts session shared by the server's threads (DuckDB connections are not
    thread-safe, so reads take turns; each read sees the latest committed snapshot).

    The figures depend on the lake's data only, so a read while the lake's snapshot has not moved
    returns the previous figures: every open page refreshing costs a snapshot lookup, and the
    exec view is computed again only after something was committed."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._last: tuple[int, DashboardData] | None = None

    def read(self) -> DashboardData:
        with self._lock:
            if self._con is None:
                self._con = open_marts_session(self._settings)
            snapshot = current_snapshot(self._con)  # before the figures: a commit in between re-reads
            if snapshot is not None and self._last is not None and self._last[0] == snapshot:
                return self._last[1]
            data = read_dashboard(self._con)
            self._last = (snapshot, data) if snapshot is not None else None
            return data

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
            self._last = None


def _kpi_card(kpi: Kpi) -> Any:
    from dash import html

    change_colour = "#555"
    if kpi.change_ratio is not None and not math.isnan(kpi.change_ratio) and kpi.change_ratio != 0:
        good = (kpi.change_ratio > 0) != (kpi.kpi == "dropped_call_rate")
        change_colour = "#1a7f37" if good else "#cf222e"
    return html.Div(
        [
            html.Div(kpi.label, className="kpi-label", style={"fontSize": "14px", "color": "#555"}),
            html.Div(
                format_value(kpi.today, kpi.unit),
                id=f"kpi-{kpi.kpi}-today",
                style={"fontSize": "30px", "fontWeight": "600"},
            ),
            html.Div(
                [
                    "same time last week: ",
                    html.Span(format_value(kpi.last_week, kpi.unit), id=f"kpi-{kpi.kpi}-last-week"),
                ],
                style={"fontSize": "13px", "color": "#555"},
            ),
            html.Div(
                format_change(kpi.change_ratio),
                id=f"kpi-{kpi.kpi}-change",
                style={"fontSize": "16px", "color": change_colour},
            ),
        ],
        className="kpi",
        style={
            "border": "1px solid #ddd",
            "borderRadius": "8px",
            "padding": "12px 16px",
            "minWidth": "190px",
        },
    )


def _hourly_figure(hours: list[HourPoint]) -> dict[str, Any]:
    x = [point.hour_of_day for point in hours]
    return {
        "data": [
            {"type": "bar", "name": "today", "x": x, "y": [p.calls_today for p in hours]},
            {"type": "bar", "name": "same time last week", "x": x, "y": [p.calls_last_week for p in hours]},
        ],
        "layout": {
            "barmode": "group",
            "height": 300,
            "margin": {"l": 50, "r": 20, "t": 30, "b": 40},
            "xaxis": {"title": {"text": "hour of day (UTC)"}, "dtick": 1},
            "yaxis": {"title": {"text": "calls attempted"}},
            "title": {"text": "Calls per hour: today against the same hours last week"},
        },
    }


def render(data: DashboardData) -> Any:
    """The page body for one read; ids name every figure the browser test checks."""
    from dash import dcc, html

    cells_table = html.Table(
        [
            html.Thead(html.Tr([html.Th(t) for t in ("cell", "dropped", "answered", "dropped-call rate")])),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(cell.cell_id),
                            html.Td(f"{cell.dropped_calls:,d}"),
                            html.Td(f"{cell.answered_calls:,d}"),
                            html.Td(format_value(cell.dropped_call_rate, "ratio")),
                        ],
                        className="worst-cell",
                        id=f"cell-{rank}",
                    )
                    for rank, cell in enumerate(data.worst_cells or [], start=1)
                ]
            ),
        ],
        id="worst-cells",
        style={"borderCollapse": "collapse", "minWidth": "420px"},
    )
    return html.Div(
        [
            html.Div(
                ["As of ", html.Span(format_as_of(data.as_of), id="as-of")],
                style={"fontSize": "18px", "marginBottom": "4px"},
            ),
            html.Div(
                f"every source complete up to this time ({data.bounding_sources} landing sources); today "
                "and the same time last week cover exactly the same span",
                style={"fontSize": "12px", "color": "#666", "marginBottom": "16px"},
            ),
            html.Div([_kpi_card(kpi) for kpi in data.kpis], style={"display": "flex", "gap": "12px"}),
            dcc.Graph(id="hourly-chart", figure=_hourly_figure(data.hours), config={"displayModeBar": False}),
            html.H3(
                f"Worst cells today by dropped-call rate (at least {MIN_ANSWERED_FOR_CELL} answered calls)"
            ),
            cells_table
            if data.worst_cells
            else html.Div(
                "the network marts are not built yet"
                if data.worst_cells is None
                else "no cell has enough answered calls yet today",
                id="worst-cells-empty",
            ),
        ]
    )


def body(reader: MartsReader) -> Any:
    """The page's figures, or, until the exec marts are built, what the page is waiting for."""
    from dash import html

    try:
        return render(reader.read())
    except (MartsNotBuiltError, duckdb.CatalogException) as exc:
        reader.close()  # the next read opens a session that sees what was built since
        return html.Div(
            [
                html.P(
                    "Waiting for the executives' marts (not built yet, or being rebuilt);"
                    " this page shows them then."
                ),
                html.Pre(str(exc).splitlines()[0], style={"whiteSpace": "pre-wrap", "color": "#666"}),
            ],
            id="waiting",
        )


def build_app(reader: MartsReader, refresh_s: float = DEFAULT_REFRESH_S) -> Any:
    """The Dash app: the body is computed on every page load and again every ``refresh_s`` seconds."""
    from dash import Dash, Input, Output, dcc, html

    app = Dash(__name__, title="cdr-platform: executives' view", update_title=None)

    def layout() -> Any:
        return html.Div(
            [
                html.H2("Executives' view: today so far against the same time last week"),
                dcc.Interval(id="refresh", interval=int(refresh_s * 1000)),
                html.Div(body(reader), id="body"),
            ],
            style={"fontFamily": "system-ui, sans-serif", "margin": "24px", "maxWidth": "1100px"},
        )

    app.layout = layout

    @app.callback(Output("body", "children"), Input("refresh", "n_intervals"), prevent_initial_call=True)
    def refresh(_: int) -> Any:
        return body(reader)

    return app


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    refresh_s: float = DEFAULT_REFRESH_S,
    wait: bool = False,
) -> int:
    """Serve the dashboard until interrupted; reads the marts only. Without ``wait`` it fails at start
    when the marts are not built (the message says what to build first); with it, it serves at once
    and the page says what it waits for until they are (``make dev`` starts it so)."""
    reader = MartsReader(settings)
    if not wait:
        reader.read()
    app = build_app(reader, refresh_s)
    print(f"executives' dashboard: http://{host}:{port}  (refreshes every {refresh_s:g} s)", flush=True)
    try:
        app.run(host=host, port=port, debug=False)
    finally:
        reader.close()
    return 0
