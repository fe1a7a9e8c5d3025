"""The report's charts as inline SVG: the downtime trend, and what every chart shares (the
steps' colours, round ticks); one migration's timeline is harness.timeline.

Drawn here rather than by a plotting library: the page must open offline, from disk, years
later, and two charts of dots, bands and lines are a few dozen lines of SVG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from harness.history import Night

__all__ = ["LINE_COLOURS", "STEP_COLOURS", "legend", "nice_step", "num", "trend_svg"]

# One colour per migration step, shared by the bands, the lanes and the legend.
STEP_COLOURS: dict[str, str] = {
    "freeze": "#6baed6",
    "quiesce": "#9e9ac8",
    "inspect": "#bdbdbd",
    "dump": "#fd8d3c",
    "reap": "#969696",
    "restore": "#74c476",
    "resume": "#fdd835",
    "rollback": "#ef3b2c",
}
# Distinct, colour-blind-friendly line colours for the trend chart (Okabe-Ito).
LINE_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")

# --- numbers to pixels ------------------------------------------------------------------------


def nice_step(span: float, target: int = 8) -> float:
    """A round tick interval (1, 2 or 5 times a power of ten) giving about target ticks."""
    raw = max(span / target, 1e-9)
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def num(value: float) -> str:
    return f"{value:.1f}"


def legend(steps: Sequence[str]) -> str:
    items = "".join(
        f'<span><i style="background:{STEP_COLOURS.get(s, "#ccc")}"></i>{escape(s)}</span>' for s in steps
    )
    return f'<div class="legend">{items}</div>'


# --- the downtime trend -----------------------------------------------------------------------


def trend_svg(nights: list[Night], width: int = 960, height: int = 240) -> str:
    """Each key's median downtime, night after night."""
    keys = sorted({k for n in nights for k in (n.get("downtime_ms") or {})})
    if not nights or not keys:
        return '<p class="none">no downtime recorded yet</p>'
    left, right, top, bottom = 64, 16, 16, 40
    inner_w, inner_h = width - left - right, height - top - bottom
    values = [v for n in nights for v in (n.get("downtime_ms") or {}).values()]
    y_hi = max(values) * 1.15 or 1.0
    count = len(nights)

    def x_of(i: int) -> float:
        return left + (inner_w / 2 if count == 1 else i / (count - 1) * inner_w)

    def y_of(v: float) -> float:
        return top + inner_h - v / y_hi * inner_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="median downtime per night">',
        f'<rect x="{left}" y="{top}" width="{inner_w}" height="{inner_h}" fill="#fafafa" stroke="#ccc"/>',
    ]
    step = nice_step(y_hi, 5)
    tick = 0.0
    while tick <= y_hi:
        y = y_of(tick)
        out.append(f'<line x1="{left}" y1="{num(y)}" x2="{left + inner_w}" y2="{num(y)}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{left - 6}" y="{num(y + 4)}" text-anchor="end">{tick:g}</text>')
        tick += step
    out.append(f'<text x="14" y="{top + inner_h / 2}" transform="rotate(-90 14 {top + inner_h / 2})" '
               'text-anchor="middle">median downtime (ms)</text>')
    labelled = {0, count - 1, *range(0, count, max(1, count // 6))}
    for i in sorted(labelled):
        # The first and last labels hang inwards, or the plot's edges would cut them.
        anchor = "middle" if count == 1 else "start" if i == 0 else "end" if i == count - 1 else "middle"
        out.append(f'<text x="{num(x_of(i))}" y="{top + inner_h + 16}" text-anchor="{anchor}">'
                   f'{escape(str(nights[i].get("stamp", i)))}</text>')
    for k, key in enumerate(keys):
        colour = LINE_COLOURS[k % len(LINE_COLOURS)]
        pts = [(x_of(i), y_of(n["downtime_ms"][key]), n) for i, n in enumerate(nights)
               if key in (n.get("downtime_ms") or {})]
        if len(pts) > 1:
            path = " ".join(f"{num(x)},{num(y)}" for x, y, _ in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y, n in pts:
            out.append(f'<circle cx="{num(x)}" cy="{num(y)}" r="3.5" fill="{colour}"><title>{escape(key)} '
                       f'{escape(str(n.get("stamp")))}: {n["downtime_ms"][key]:.1f} ms</title></circle>')
    out.append("</svg>")
    items = "".join(
        f'<span><i style="background:{LINE_COLOURS[k % len(LINE_COLOURS)]}"></i>{escape(key)}</span>'
        for k, key in enumerate(keys)
    )
    return "\n".join(out) + f'\n<div class="legend">{items}</div>'


