"""Charts drawn on the server as inline SVG: no script, no library, readable in both themes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

SERIES = (("succeeded", "Succeeded"), ("failed", "Failed attempts"), ("dead", "Dead"))


@dataclass(frozen=True)
class HourBar:
    """One hour's deliveries: attempts that succeeded, attempts that failed, deliveries that went dead."""

    hour: datetime
    succeeded: int
    failed: int
    dead: int


def hourly_chart(bars: Sequence[HourBar], *, label: str, width: int = 720, height: int = 180) -> Markup:
    """Return stacked bars per hour as an accessible SVG (colours come from CSS classes, so themes apply)."""
    left, bottom, top = 40, 22, 8
    plot_w, plot_h = width - left - 4, height - bottom - top
    peak = max((b.succeeded + b.failed + b.dead for b in bars), default=0)
    scale_max = _nice_ceiling(peak)
    slot = plot_w / max(len(bars), 1)
    bar_w = max(slot * 0.72, 1.0)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        f'preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
    ]
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{left}" x2="{width - 4}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{_short(scale_max * fraction)}</text>")
    for index, bar in enumerate(bars):
        x = left + index * slot + (slot - bar_w) / 2
        y = top + plot_h
        for key, name in SERIES:
            value = getattr(bar, key)
            if not value:
                continue
            h = plot_h * value / scale_max
            y -= h
            parts.append(
                f'<rect class="bar {key}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}">'
                f"<title>{bar.hour:%H:00} UTC — {name}: {value}</title></rect>"
            )
        if index % 3 == 0 or index == len(bars) - 1:
            parts.append(f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                         f"{bar.hour:%H}h</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"
