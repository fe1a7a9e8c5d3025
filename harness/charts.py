"""The report's charts as inline SVG: one migration's timeline, and the downtime trend.

Drawn here rather than by a plotting library: the page must open offline, from disk, years
later, and two charts of dots, bands and lines are a few dozen lines of SVG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from harness.history import Night
from harness.result import CycleResult

__all__ = ["LINE_COLOURS", "STEP_COLOURS", "legend", "timeline_svg", "trend_svg"]

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


def _nice_step(span: float, target: int = 8) -> float:
    """A round tick interval (1, 2 or 5 times a power of ten) giving about target ticks."""
    raw = max(span / target, 1e-9)
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _f(value: float) -> str:
    return f"{value:.1f}"


# --- the timeline of one migration ------------------------------------------------------------


def _gap(points: list[tuple[float, float]], start: float, end: float) -> tuple[float, float] | None:
    """The longest silence between two answered round trips that overlaps [start, end]."""
    best = None
    for (a, _), (b, _) in zip(points, points[1:]):
        if b >= start and a <= end and (best is None or b - a > best[1] - best[0]):
            best = (a, b)
    return best


def timeline_svg(cycle: CycleResult, width: int = 960) -> str:
    """Round trips as dots (x: ms from the migration's start, y: rtt on a log scale) above
    one lane per role of the migration's phases; each phase also shades the whole height, so
    the silence in the round trips lines up with the steps that caused it."""
    phases = [p for p in cycle.phases if p.finished >= p.started]
    raw = list(cycle.timeline)
    if not phases and not raw:
        return '<p class="none">no timeline recorded for this cycle</p>'
    t0 = min(p.started for p in phases) if phases else raw[0][0]
    t1 = max(p.finished for p in phases) if phases else raw[-1][0]
    points = sorted(((ts - t0) * 1e3, rtt) for ts, rtt in raw)
    duration = (t1 - t0) * 1e3
    # Zoom on the migration: a second of round trips before it would squeeze it to a sliver.
    lo = -max(250.0, 0.5 * duration)
    hi = duration + max(400.0, 0.75 * duration)
    if points:
        lo, hi = max(lo, min(points[0][0], 0.0)), min(hi, max(points[-1][0], duration))
    hi = max(hi, lo + 1.0)
    shown = [(x, y) for x, y in points if lo <= x <= hi]

    roles = list(dict.fromkeys(p.role for p in phases))
    left, right, top, plot_h, lane_h = 64, 16, 26, 200, 22
    lanes_top = top + plot_h + 8
    axis_y = lanes_top + lane_h * len(roles) + 4
    height = axis_y + 40
    inner = width - left - right

    def x_of(ms: float) -> float:
        return left + (ms - lo) / (hi - lo) * inner

    rtts = [max(y, 0.01) for _, y in shown] or [1.0]
    y_lo = 10.0 ** math.floor(math.log10(min(rtts)))
    y_hi = 10 ** math.ceil(math.log10(max(rtts) * 1.01))
    if y_hi <= y_lo:
        y_hi = y_lo * 10

    def y_of(rtt: float) -> float:
        frac = (math.log10(max(rtt, y_lo)) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo))
        return top + plot_h - frac * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="round trips and migration phases">',
        f'<rect x="{left}" y="{top}" width="{inner}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>',
    ]
    # Bands first, so that the dots are drawn over them.
    for p in phases:
        x0, x1 = x_of((p.started - t0) * 1e3), x_of((p.finished - t0) * 1e3)
        colour = STEP_COLOURS.get(p.step, "#cccccc")
        w = max(x1 - x0, 1.0)
        out.append(
            f'<rect class="band" data-step="{escape(p.step)}" x="{_f(x0)}" y="{top}" '
            f'width="{_f(w)}" height="{lanes_top + lane_h * len(roles) - top}" fill="{colour}" '
            f'fill-opacity="0.28"><title>{escape(p.role)} {escape(p.step)}: '
            f'{p.duration_ms:.1f} ms</title></rect>'
        )
    for i, role in enumerate(roles):
        y = lanes_top + i * lane_h
        out.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{escape(role)}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{inner}" height="{lane_h - 2}" fill="none" stroke="#eee"/>')
        for p in (p for p in phases if p.role == role):
            x0, x1 = x_of((p.started - t0) * 1e3), x_of((p.finished - t0) * 1e3)
            w = max(x1 - x0, 1.0)
            stroke = ' stroke="#b00" stroke-width="2"' if not p.ok else ""
            label = p.step + ("" if p.ok else " FAILED")
            out.append(
                f'<rect class="phase" x="{_f(x0)}" y="{y}" width="{_f(w)}" height="{lane_h - 2}" '
                f'fill="{STEP_COLOURS.get(p.step, "#ccc")}"{stroke}><title>{escape(role)} '
                f'{escape(label)}: {p.duration_ms:.1f} ms</title></rect>'
            )
            if w >= 7 * len(label) + 4:  # only where the word fits; the legend names the rest
                out.append(f'<text x="{_f(x0 + w / 2)}" y="{y + 14}" text-anchor="middle">{escape(label)}</text>')
    # Axes: ms from the migration's start; rtt in decades.
    step = _nice_step(hi - lo)
    tick = math.ceil(lo / step) * step
    while tick <= hi:
        x = x_of(tick)
        out.append(f'<line x1="{_f(x)}" y1="{top}" x2="{_f(x)}" y2="{axis_y}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{_f(x)}" y="{axis_y + 14}" text-anchor="middle">{tick:g}</text>')
        tick += step
    out.append(f'<text x="{left + inner / 2}" y="{axis_y + 32}" text-anchor="middle">'
               "ms from the start of the migration</text>")
    decade = y_lo
    while decade <= y_hi * 1.0001:
        grid_y = y_of(decade)
        out.append(f'<line x1="{left}" y1="{_f(grid_y)}" x2="{left + inner}" y2="{_f(grid_y)}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{left - 6}" y="{_f(grid_y + 4)}" text-anchor="end">{decade:g}</text>')
        decade *= 10
    out.append(f'<text x="14" y="{top + plot_h / 2}" transform="rotate(-90 14 {top + plot_h / 2})" '
               'text-anchor="middle">rtt (ms, log)</text>')
    x_start = x_of(0.0)
    out.append(f'<line x1="{_f(x_start)}" y1="{top}" x2="{_f(x_start)}" y2="{axis_y}" '
               'stroke="#333" stroke-dasharray="4 3"/>')
    for ms, rtt in shown:
        out.append(f'<circle class="rtt" cx="{_f(x_of(ms))}" cy="{_f(y_of(rtt))}" r="2.5" fill="#08519c">'
                   f"<title>{ms:.1f} ms: rtt {rtt:.2f} ms</title></circle>")
    gap = _gap(points, 0.0, duration)
    if gap is not None:
        gx0, gx1 = x_of(max(gap[0], lo)), x_of(min(gap[1], hi))
        out.append(f'<line class="gap" x1="{_f(gx0)}" y1="{top - 8}" x2="{_f(gx1)}" y2="{top - 8}" '
                   'stroke="#b00" stroke-width="2"/>')
        for gx in (gx0, gx1):
            out.append(f'<line x1="{_f(gx)}" y1="{top - 13}" x2="{_f(gx)}" y2="{top - 3}" stroke="#b00" stroke-width="2"/>')
        out.append(f'<text x="{_f((gx0 + gx1) / 2)}" y="{top - 12}" text-anchor="middle" '
                   f'style="fill:#b00">no replies for {gap[1] - gap[0]:.1f} ms</text>')
    hidden = len(points) - len(shown)
    if hidden:
        out.append(f'<text x="{left + inner}" y="{height - 4}" text-anchor="end">'
                   f"{hidden} round trip(s) outside this window</text>")
    out.append("</svg>")
    return "\n".join(out)


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
    step = _nice_step(y_hi, 5)
    tick = 0.0
    while tick <= y_hi:
        y = y_of(tick)
        out.append(f'<line x1="{left}" y1="{_f(y)}" x2="{left + inner_w}" y2="{_f(y)}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{left - 6}" y="{_f(y + 4)}" text-anchor="end">{tick:g}</text>')
        tick += step
    out.append(f'<text x="14" y="{top + inner_h / 2}" transform="rotate(-90 14 {top + inner_h / 2})" '
               'text-anchor="middle">median downtime (ms)</text>')
    labelled = {0, count - 1, *range(0, count, max(1, count // 6))}
    for i in sorted(labelled):
        # The first and last labels hang inwards, or the plot's edges would cut them.
        anchor = "middle" if count == 1 else "start" if i == 0 else "end" if i == count - 1 else "middle"
        out.append(f'<text x="{_f(x_of(i))}" y="{top + inner_h + 16}" text-anchor="{anchor}">'
                   f'{escape(str(nights[i].get("stamp", i)))}</text>')
    for k, key in enumerate(keys):
        colour = LINE_COLOURS[k % len(LINE_COLOURS)]
        pts = [(x_of(i), y_of(n["downtime_ms"][key]), n) for i, n in enumerate(nights)
               if key in (n.get("downtime_ms") or {})]
        if len(pts) > 1:
            path = " ".join(f"{_f(x)},{_f(y)}" for x, y, _ in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y, n in pts:
            out.append(f'<circle cx="{_f(x)}" cy="{_f(y)}" r="3.5" fill="{colour}"><title>{escape(key)} '
                       f'{escape(str(n.get("stamp")))}: {n["downtime_ms"][key]:.1f} ms</title></circle>')
    out.append("</svg>")
    items = "".join(
        f'<span><i style="background:{LINE_COLOURS[k % len(LINE_COLOURS)]}"></i>{escape(key)}</span>'
        for k, key in enumerate(keys)
    )
    return "\n".join(out) + f'\n<div class="legend">{items}</div>'


