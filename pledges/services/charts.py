"""Pledges per hour as a small SVG bar chart, drawn on the server: no chart library to download."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import format_number, gettext, ngettext
from markupsafe import Markup, escape

from ..i18n import local_datetime, local_time

WIDTH, HEIGHT = 960, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 16, 36
THEMES = {
    "light": {"bar": "#c98f00", "text": "#1b1b1b", "grid": "#b8b2a3", "background": "#ffffff"},
    "kiosk": {"bar": "#ffd23f", "text": "#ffffff", "grid": "#8a8a8a", "background": "#000000"},
}


def _label_every(count: int) -> int:
    return next(step for step in (1, 2, 3, 6, 12, 24, 48) if count / step <= 12)


def chart_summary(points: list[dict[str, Any]], timezone: str) -> str:
    """The chart in words: its text alternative."""
    peak = max((p["total"] for p in points), default=0)
    if not peak:
        return gettext("No pledges yet.")
    busiest: datetime = max(points, key=lambda p: p["total"])["start"]
    return ngettext(
        "%(num)s hour shown. The busiest hour began %(when)s, with %(count)s pledges.",
        "%(num)s hours shown. The busiest hour began %(when)s, with %(count)s pledges.",
        len(points),
        when=local_datetime(busiest, timezone),
        count=format_number(peak),
    )


def hourly_chart(points: list[dict[str, Any]], timezone: str, theme: str = "light") -> str:
    """An SVG document of hourly points (from services.totals.timeseries), labelled in local time."""
    colours = THEMES.get(theme, THEMES["light"])
    peak = max((p["total"] for p in points), default=0)
    scale = max(peak, 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(points), 1)
    title = gettext("Pledges per hour")
    summary = chart_summary(points, timezone)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title chart-desc" font-family="system-ui, sans-serif" font-size="14">',
        f'<title id="chart-title">{escape(title)}</title><desc id="chart-desc">{escape(summary)}</desc>',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="{colours["background"]}"/>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" '
        f'stroke="{colours["grid"]}"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 5}" text-anchor="end" fill="{colours["text"]}">'
        f"{format_number(peak)}</text>",
        f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end" fill="{colours["text"]}">0</text>',
    ]
    every = _label_every(len(points))
    for index, point in enumerate(points):
        x = LEFT + index * slot
        bar = plot_h * point["total"] / scale
        if bar:
            parts.append(
                f'<rect x="{x + slot * 0.1:.1f}" y="{TOP + plot_h - bar:.1f}" width="{slot * 0.8:.1f}" '
                f'height="{bar:.1f}" fill="{colours["bar"]}"/>'
            )
        if index % every == 0:
            label = local_time(point["start"], timezone)
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{HEIGHT - 12}" text-anchor="middle" '
                f'fill="{colours["text"]}">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
