"""Water-level charts as inline SVG, drawn on the server: no chart library, nothing to download on
a phone in a storm, and the page works even where scripts do not."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

from gateway.api.sites import LEVELS, Thresholds
from gateway.store.db import Bucket
from gateway.store.intake import from_ms, to_ms

# The Japan Meteorological Agency's warning colours (yellow, red, purple); green for standby.
COLORS = {
    "normal": "#e8eef5",
    "standby": "#2e8b57",
    "caution": "#f2e700",
    "evacuation": "#ff2800",
    "danger": "#aa00aa",
    "missing": "#7a7a7a",
}
LINE_COLORS = COLORS | {"caution": "#d4c600"}  # the same yellow, dark enough on white
WIDTH, HEIGHT = 360, 170
LEFT, RIGHT, TOP, BOTTOM = 34, 8, 12, 20


def level_chart(
    points: list[Bucket],
    start_ms: int,
    end_ms: int,
    levels: Thresholds,
    tz: ZoneInfo,
    label: str,
    step_ms: int,
    daily_ticks: bool,
    level_names: dict[str, str],
) -> str:
    """The chart; the y axis is metres above the gauge datum, and each warning level is a dashed
    line in its colour with its name and height written at the right end."""
    values = [v for p in points for v in (p.min, p.max) if v is not None]
    lo = math.floor(min([*values, 0.0]) * 2) / 2
    hi = math.ceil(max([*values, levels.danger]) * 1.1 * 2) / 2
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(ms: int) -> float:
        return round(LEFT + (ms - start_ms) / (end_ms - start_ms) * plot_w, 1)

    def y(value: float) -> float:
        return round(TOP + (hi - value) / (hi - lo) * plot_h, 1)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fff" '
        'stroke="#bbb"/>',
    ]
    parts.append(
        f'<text class="unit" x="{LEFT - 4}" y="{TOP - 1}" text-anchor="end" font-size="10" '
        'fill="#444">m</text>'
    )
    tick = 0.5 if hi - lo <= 4 else 1.0
    value = math.ceil(lo / tick) * tick
    while value <= hi + 1e-9:
        parts.append(
            f'<text x="{LEFT - 4}" y="{y(value) + 4}" text-anchor="end" font-size="10" '
            f'fill="#444">{value:g}</text>'
        )
        value += tick
    for ms, text in _time_ticks(start_ms, end_ms, tz, daily_ticks):
        parts.append(
            f'<line x1="{x(ms)}" y1="{TOP}" x2="{x(ms)}" y2="{TOP + plot_h}" stroke="#eee"/>'
            f'<text x="{x(ms)}" y="{HEIGHT - 6}" text-anchor="middle" font-size="10" '
            f'fill="#444">{text}</text>'
        )
    for name in LEVELS:
        level = getattr(levels, name)
        if lo <= level <= hi:
            parts.append(
                f'<line class="level-{name}" x1="{LEFT}" y1="{y(level)}" x2="{LEFT + plot_w}" '
                f'y2="{y(level)}" stroke="{LINE_COLORS[name]}" stroke-width="1.5" '
                'stroke-dasharray="5 3"/>'
                f'<text class="level-label" x="{LEFT + plot_w - 2}" y="{y(level) - 2}" '
                f'text-anchor="end" font-size="9" fill="{LINE_COLORS[name]}" '
                'stroke="#fff" stroke-width="2.5" paint-order="stroke">'
                f"{escape(level_names[name])} {level:.2f}</text>"
            )
    for run in _runs(points, step_ms):
        if len(run) > 1 and any(p.min != p.max for p in run):
            outline = [(x(p.start_ms), y(p.max)) for p in run]
            outline += [(x(p.start_ms), y(p.min)) for p in reversed(run)]
            parts.append(f'<polygon points="{_xy(outline)}" fill="#1e63b4" fill-opacity="0.15"/>')
        line = [(x(p.start_ms), y(p.avg)) for p in run]
        if len(line) == 1:
            parts.append(f'<circle cx="{line[0][0]}" cy="{line[0][1]}" r="2" fill="#1e63b4"/>')
        else:
            parts.append(
                f'<polyline class="level" points="{_xy(line)}" fill="none" stroke="#1e63b4" '
                'stroke-width="2"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _xy(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{px},{py}" for px, py in points)


def _runs(points: list[Bucket], step_ms: int) -> list[list[Bucket]]:
    """Stretches of readings without a gap: a 欠測 or a silence longer than three steps breaks
    the line, so a chart never draws water where nothing was measured."""
    runs: list[list[Bucket]] = []
    current: list[Bucket] = []
    for p in points:
        if p.avg is None or (current and p.start_ms - current[-1].start_ms > 3 * step_ms):
            if current:
                runs.append(current)
            current = []
        if p.avg is not None:
            current.append(p)
    if current:
        runs.append(current)
    return runs


def _time_ticks(start_ms: int, end_ms: int, tz: ZoneInfo, daily: bool) -> list[tuple[int, str]]:
    """Local midnights (7 days) or every six hours (24 hours) inside the window."""
    local = from_ms(start_ms).astimezone(tz)
    if daily:
        moment = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        step = timedelta(days=1)
    else:
        moment = local.replace(hour=local.hour - local.hour % 6, minute=0, second=0, microsecond=0)
        moment += timedelta(hours=6)
        step = timedelta(hours=6)
    ticks = []
    while to_ms(moment) < end_ms:
        ticks.append((to_ms(moment), _label(moment, daily)))
        moment = (moment + step).astimezone(tz)
    return ticks


def _label(moment: datetime, daily: bool) -> str:
    return f"{moment.month}/{moment.day}" if daily else f"{moment.hour}:00"
