"""The executives' KPIs as asset metadata that the Dagster UI shows on the asset's overview.

The UI renders a Markdown value inline only when it is shorter than 1,000 characters (longer ones
hide behind "[Show Markdown]"), and table values always inline; it renders neither Vega-Lite nor
inline SVG, and matplotlib is not a dependency. So the KPIs are a short Markdown table of formatted
values, and the chart is a table of Unicode bars: today's calls per hour beside the same hour last
week, and revenue so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dagster import MetadataValue, TableColumn, TableMetadataValue, TableRecord, TableSchema

BAR_WIDTH = 24
BLOCKS = " ▏▎▍▌▋▊▉█"
INLINE_MARKDOWN_LIMIT = 1000
"""The Dagster UI shows Markdown metadata inline below this many characters."""


@dataclass(frozen=True)
class HourlyPoint:
    """One row of ``marts.rpt_exec_kpis_hourly``."""

    hour_of_day: int
    calls_today: int
    calls_last_week: int
    revenue_today: float
    revenue_last_week: float


@dataclass(frozen=True)
class KpiRow:
    """One row of ``marts.rpt_exec_kpis_intraday``."""

    label: str
    unit: str
    today: float | None
    last_week: float | None
    change_ratio: float | None


def bar(value: float, maximum: float, width: int = BAR_WIDTH) -> str:
    """A left-aligned bar of eighth-blocks, ``value / maximum`` of ``width`` characters long."""
    if maximum <= 0 or value <= 0:
        return ""
    eighths = round(min(value / maximum, 1.0) * width * 8)
    return BLOCKS[-1] * (eighths // 8) + (BLOCKS[eighths % 8] if eighths % 8 else "")


def format_value(value: float | None, unit: str) -> str:
    """A KPI as an executive reads it: ratios in percent, money with two decimals, counts whole."""
    if value is None:
        return "n/a"
    if unit == "ratio":
        return f"{value:.2%}"
    if unit == "currency":
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def rounded(value: float, unit: str) -> float | int:
    """The plotted value: a ratio in percent to two decimals, money to cents, counts whole."""
    if unit == "ratio":
        return round(value * 100, 2)
    if unit == "currency":
        return round(value, 2)
    return round(value)


def _change(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:+.1%}"


def kpi_markdown(as_of: str, kpis: Sequence[KpiRow]) -> str:
    """Markdown: each KPI today, the same time last week, and the change (short enough to show inline)."""
    lines = [
        f"**As of {as_of} (UTC)**, compared with the same time last week.",
        "",
        "| KPI | Today | Same time last week | Change |",
        "| --- | ---: | ---: | ---: |",
    ]
    for k in kpis:
        today, week = format_value(k.today, k.unit), format_value(k.last_week, k.unit)
        lines.append(f"| {k.label} | {today} | {week} | {_change(k.change_ratio)} |")
    return "\n".join(lines)


def hourly_chart(hours: Sequence[HourlyPoint]) -> TableMetadataValue:
    """Calls per hour today (█) beside the same hour last week (░), and revenue so far, as a table."""
    peak = max([h.calls_today for h in hours] + [h.calls_last_week for h in hours] + [0])
    schema = TableSchema(
        columns=[
            TableColumn("hour", "string"),
            TableColumn("calls today", "int"),
            TableColumn("today", "string"),
            TableColumn("last week", "int"),
            TableColumn("same hour last week", "string"),
            TableColumn("revenue today", "string"),
            TableColumn("revenue last week", "string"),
        ]
    )
    records = [
        TableRecord(
            {
                "hour": f"{h.hour_of_day:02d}:00",
                "calls today": h.calls_today,
                "today": bar(h.calls_today, peak),
                "last week": h.calls_last_week,
                "same hour last week": bar(h.calls_last_week, peak).replace("█", "░"),
                "revenue today": f"{h.revenue_today:,.2f}",
                "revenue last week": f"{h.revenue_last_week:,.2f}",
            }
        )
        for h in hours
    ]
    return MetadataValue.table(records, schema)
