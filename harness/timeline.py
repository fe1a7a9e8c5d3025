"""One migration's timeline as inline SVG: the client's answered round trips above one lane
per role of the migration's steps, so the silence lines up with the steps that caused it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from harness.charts import STEP_COLOURS, nice_step, num
from harness.result import CycleResult, Phase

__all__ = ["timeline_svg"]


def _gap(points: list[tuple[float, float]], start: float, end: float) -> tuple[float, float] | None:
    """The longest silence between two answered round trips that overlaps [start, end]."""
    best = None
    for (a, _), (b, _) in zip(points, points[1:]):
        if b >= start and a <= end and (best is None or b - a > best[1] - best[0]):
            best = (a, b)
    return best


@dataclass
class _Timeline:
    """One cycle's timeline laid out: the window shown (ms from the migration's start), the
    pixel geometry, and the scales from ms and rtt to pixels."""

    phases: list[Phase]
    points: list[tuple[float, float]]  # (ms from t0, rtt)
    t0: float
    duration: float
    lo: float
    hi: float
    roles: list[str]
    width: int
    left: int = 64
    right: int = 16
    top: int = 26
    plot_h: int = 200
    lane_h: int = 22
    y_lo: float = 1.0
    y_hi: float = 10.0

    @property
    def inner(self) -> int:
        return self.width - self.left - self.right

    @property
    def lanes_top(self) -> int:
        return self.top + self.plot_h + 8

    @property
    def axis_y(self) -> int:
        return self.lanes_top + self.lane_h * len(self.roles) + 4

    @property
    def height(self) -> int:
        return self.axis_y + 40

    @property
    def shown(self) -> list[tuple[float, float]]:
        return [(x, y) for x, y in self.points if self.lo <= x <= self.hi]

    def x_of(self, ms: float) -> float:
        return self.left + (ms - self.lo) / (self.hi - self.lo) * self.inner

    def x_at(self, wall: float) -> float:
        return self.x_of((wall - self.t0) * 1e3)

    def y_of(self, rtt: float) -> float:
        span = math.log10(self.y_hi) - math.log10(self.y_lo)
        frac = (math.log10(max(rtt, self.y_lo)) - math.log10(self.y_lo)) / span
        return self.top + self.plot_h - frac * self.plot_h


def _layout(cycle: CycleResult, width: int) -> _Timeline | None:
    phases = [p for p in cycle.phases if p.finished >= p.started]
    raw = list(cycle.timeline)
    if not phases and not raw:
        return None
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
    layout = _Timeline(phases, points, t0, duration, lo, hi,
                       list(dict.fromkeys(p.role for p in phases)), width)
    rtts = [max(y, 0.01) for _, y in layout.shown] or [1.0]
    layout.y_lo = 10.0 ** math.floor(math.log10(min(rtts)))
    layout.y_hi = 10 ** math.ceil(math.log10(max(rtts) * 1.01))
    if layout.y_hi <= layout.y_lo:
        layout.y_hi = layout.y_lo * 10
    return layout


def _bands(t: _Timeline) -> list[str]:
    """Each phase shades the whole height (drawn first: the dots go over them)."""
    out = []
    for p in t.phases:
        x0, x1 = t.x_at(p.started), t.x_at(p.finished)
        colour = STEP_COLOURS.get(p.step, "#cccccc")
        w = max(x1 - x0, 1.0)
        out.append(
            f'<rect class="band" data-step="{escape(p.step)}" x="{num(x0)}" y="{t.top}" '
            f'width="{num(w)}" height="{t.lanes_top + t.lane_h * len(t.roles) - t.top}" '
            f'fill="{colour}" fill-opacity="0.28"><title>{escape(p.role)} {escape(p.step)}: '
            f'{p.duration_ms:.1f} ms</title></rect>'
        )
    return out


def _lanes(t: _Timeline) -> list[str]:
    """One lane per role, its phases as labelled boxes (a failed one outlined)."""
    out = []
    for i, role in enumerate(t.roles):
        y = t.lanes_top + i * t.lane_h
        out.append(f'<text x="{t.left - 6}" y="{y + 15}" text-anchor="end">{escape(role)}</text>')
        out.append(f'<rect x="{t.left}" y="{y}" width="{t.inner}" height="{t.lane_h - 2}" '
                   'fill="none" stroke="#eee"/>')
        for p in (p for p in t.phases if p.role == role):
            x0, x1 = t.x_at(p.started), t.x_at(p.finished)
            w = max(x1 - x0, 1.0)
            stroke = ' stroke="#b00" stroke-width="2"' if not p.ok else ""
            label = p.step + ("" if p.ok else " FAILED")
            out.append(
                f'<rect class="phase" x="{num(x0)}" y="{y}" width="{num(w)}" height="{t.lane_h - 2}" '
                f'fill="{STEP_COLOURS.get(p.step, "#ccc")}"{stroke}><title>{escape(role)} '
                f'{escape(label)}: {p.duration_ms:.1f} ms</title></rect>'
            )
            if w >= 7 * len(label) + 4:  # only where the word fits; the legend names the rest
                out.append(f'<text x="{num(x0 + w / 2)}" y="{y + 14}" '
                           f'text-anchor="middle">{escape(label)}</text>')
    return out


def _axes(t: _Timeline) -> list[str]:
    """ms from the migration's start below; rtt in decades on the left; the start dashed."""
    out = []
    step = nice_step(t.hi - t.lo)
    tick = math.ceil(t.lo / step) * step
    while tick <= t.hi:
        x = t.x_of(tick)
        out.append(f'<line x1="{num(x)}" y1="{t.top}" x2="{num(x)}" y2="{t.axis_y}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{num(x)}" y="{t.axis_y + 14}" text-anchor="middle">{tick:g}</text>')
        tick += step
    out.append(f'<text x="{t.left + t.inner / 2}" y="{t.axis_y + 32}" text-anchor="middle">'
               "ms from the start of the migration</text>")
    decade = t.y_lo
    while decade <= t.y_hi * 1.0001:
        grid_y = t.y_of(decade)
        out.append(f'<line x1="{t.left}" y1="{num(grid_y)}" x2="{t.left + t.inner}" '
                   f'y2="{num(grid_y)}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{t.left - 6}" y="{num(grid_y + 4)}" text-anchor="end">{decade:g}</text>')
        decade *= 10
    middle = t.top + t.plot_h / 2
    out.append(f'<text x="14" y="{middle}" transform="rotate(-90 14 {middle})" '
               'text-anchor="middle">rtt (ms, log)</text>')
    x_start = t.x_of(0.0)
    out.append(f'<line x1="{num(x_start)}" y1="{t.top}" x2="{num(x_start)}" y2="{t.axis_y}" '
               'stroke="#333" stroke-dasharray="4 3"/>')
    return out


def _dots_and_gap(t: _Timeline) -> list[str]:
    """The answered round trips, and the longest silence marked above them."""
    out = [
        f'<circle class="rtt" cx="{num(t.x_of(ms))}" cy="{num(t.y_of(rtt))}" r="2.5" '
        f'fill="#08519c"><title>{ms:.1f} ms: rtt {rtt:.2f} ms</title></circle>'
        for ms, rtt in t.shown
    ]
    gap = _gap(t.points, 0.0, t.duration)
    if gap is not None:
        gx0, gx1 = t.x_of(max(gap[0], t.lo)), t.x_of(min(gap[1], t.hi))
        out.append(f'<line class="gap" x1="{num(gx0)}" y1="{t.top - 8}" x2="{num(gx1)}" '
                   f'y2="{t.top - 8}" stroke="#b00" stroke-width="2"/>')
        for gx in (gx0, gx1):
            out.append(f'<line x1="{num(gx)}" y1="{t.top - 13}" x2="{num(gx)}" y2="{t.top - 3}" '
                       'stroke="#b00" stroke-width="2"/>')
        out.append(f'<text x="{num((gx0 + gx1) / 2)}" y="{t.top - 12}" text-anchor="middle" '
                   f'style="fill:#b00">no replies for {gap[1] - gap[0]:.1f} ms</text>')
    hidden = len(t.points) - len(t.shown)
    if hidden:
        out.append(f'<text x="{t.left + t.inner}" y="{t.height - 4}" text-anchor="end">'
                   f"{hidden} round trip(s) outside this window</text>")
    return out


def timeline_svg(cycle: CycleResult, width: int = 960) -> str:
    """Round trips as dots (x: ms from the migration's start, y: rtt on a log scale) above
    one lane per role of the migration's phases; each phase also shades the whole height, so
    the silence in the round trips lines up with the steps that caused it."""
    t = _layout(cycle, width)
    if t is None:
        return '<p class="none">no timeline recorded for this cycle</p>'
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" '
        f'height="{t.height}" viewBox="0 0 {width} {t.height}" role="img" '
        'aria-label="round trips and migration phases">',
        f'<rect x="{t.left}" y="{t.top}" width="{t.inner}" height="{t.plot_h}" fill="#fafafa" '
        'stroke="#ccc"/>',
        *_bands(t), *_lanes(t), *_axes(t), *_dots_and_gap(t),
        "</svg>",
    ]
    return "\n".join(out)
