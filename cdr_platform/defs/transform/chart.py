"""The executives' KPI chart as Markdown, which the Dagster UI renders in asset metadata.

The UI renders ``MetadataValue.md`` (tables included) but neither Vega-Lite specs nor inline
SVG, and matplotlib is not a dependency, so the chart is a table of Unicode bars: today's calls
per hour beside the same hour last week, and revenue so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BAR_WIDTH = 24
BLOCKS = " ▏▎▍▌▋▊▉█"


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


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ratio":
        return f"{value:.2%}"
    if unit == "currency":
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def _change(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:+.1%}"


def kpi_markdown(as_of: str, kpis: Sequence[KpiRow], hours: Sequence[HourlyPoint]) -> str:
    """Markdown: the KPI table, then calls per hour today (▇) beside the same hour last week (░)."""
    lines = [
        f"**As of {as_of} (UTC)**, compared with the same time last week.",
        "",
        "| KPI | Today | Same time last week | Change |",
        "| --- | ---: | ---: | ---: |",
    ]
    for k in kpis:
        today, week = _format(k.today, k.unit), _format(k.last_week, k.unit)
        lines.append(f"| {k.label} | {today} | {week} | {_change(k.change_ratio)} |")
    peak = max([h.calls_today for h in hours] + [h.calls_last_week for h in hours] + [0])
    lines += [
        "",
        "**Calls per hour**: today (█) and the same hour last week (░); revenue so far.",
        "",
        "| Hour | Calls today | | Last week | | Revenue today | Last week |",
        "| ---: | ---: | :--- | ---: | :--- | ---: | ---: |",
    ]
    for h in hours:
        lines.append(
            f"| {h.hour_of_day:02d}:00 | {h.calls_today} | `{bar(h.calls_today, peak):<{BAR_WIDTH}}` "
            f"| {h.calls_last_week} | `{bar(h.calls_last_week, peak).replace('█', '░'):<{BAR_WIDTH}}` "
            f"| {h.revenue_today:,.2f} | {h.revenue_last_week:,.2f} |"
        )
    return "\n".join(lines)
