"""The nightly report as one self-contained HTML page: inline CSS and SVG drawn here, no script.

Self-contained because it travels as a CI artifact and is opened from disk, offline, years later.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

from harness.atlas import ATLAS_CSS, atlas_of
from harness.charts import STEP_COLOURS, legend, trend_svg
from harness.compare import Comparison, key_of, normalized_signature
from harness.faulttable import html as fault_table
from harness.fields import JsonObject
from harness.history import Night, key_name
from harness.report import RunReport
from harness.result import Outcome, ScenarioResult
from harness.timeline import timeline_svg

__all__ = ["REPORT", "render"]

REPORT = "report.html"


def outcome_class(outcome: Outcome) -> str:
    """The row's colour: as expected (skipped greyed, it proved nothing), or not."""
    if outcome is Outcome.SKIPPED:
        return "meh"
    return "good" if outcome.as_expected else "bad"

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; } h3 { font-size: 15px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
.summary td, .summary th { white-space: nowrap; }
.summary td.sig { white-space: normal; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.good { background: #e5f5e0; } .bad { background: #fdd0d0; } .meh { background: #f0f0f0; }
.regression { color: #b00; font-weight: bold; }
.sig { font-family: ui-monospace, monospace; font-size: 12px; max-width: 520px; }
.env td:first-child { font-weight: bold; }
.result { border-top: 1px solid #ddd; margin-top: 16px; }
.legend span { display: inline-block; margin-right: 12px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px;
            vertical-align: middle; border: 1px solid #888; }
svg { display: block; margin: 6px 0; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
"""


# --- the page ---------------------------------------------------------------------------------


def _anchor(entry: ScenarioResult, i: int) -> str:
    return f"r{i}-" + "".join(
        c if c.isalnum() else "-" for c in key_name(entry.name, entry.backend, entry.variant)
    )


def _ms(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


def _environment(results: RunReport) -> str:
    env: JsonObject = dict(results.environment or {})
    env.setdefault("criu_version", results.criu_version)
    env.setdefault("kernel", results.kernel)
    features = env.pop("features", {}) or {}
    rows = [f"<tr><td>{escape(str(k))}</td><td>{escape(str(v))}</td></tr>" for k, v in env.items()]
    if features:
        shown = ", ".join(
            f"{escape(name)}: {'yes' if ok else 'no' if ok is False else 'unknown'}"
            for name, ok in features.items()
        )
        rows.append(f"<tr><td>features</td><td>{shown}</td></tr>")
    return '<table class="env">' + "".join(rows) + "</table>"


def _comparison(comparison: Comparison | None) -> str:
    if comparison is None:
        return "<p>No previous night to compare with.</p>"
    items = "".join(
        f'<li class="{"regression" if v.regression else ""}">{escape(v.line())}</li>'
        for v in comparison.verdicts if v.kind != "unchanged"
    )
    return (f"<p>Against <code>{escape(comparison.old)}</code> (downtime threshold "
            f"+{comparison.threshold:.0%}): {escape(comparison.summary())}</p>"
            + (f"<ul>{items}</ul>" if items else ""))


def _summary(results: RunReport, comparison: Comparison | None) -> str:
    verdicts = comparison.by_key() if comparison else {}
    head = ("<tr><th>scenario</th><th>backend</th><th>plan</th><th>outcome</th><th>lost</th>"
            "<th>errors</th><th>downtime (ms, median)</th><th>CRIU error</th><th>compare</th></tr>")
    rows = []
    for i, s in enumerate(results.scenarios):
        key = key_of(s, results)
        v = verdicts.get(key)
        verdict = (f'<span class="{"regression" if v.regression else ""}">{escape(v.kind)}</span>'
                   if v else "-")
        rows.append(
            f'<tr class="{outcome_class(s.outcome)}">'
            f'<td><a href="#{_anchor(s, i)}">{escape(s.name)}</a></td>'
            f'<td>{escape(key[1])}</td><td>{escape(key[2])}</td><td>{escape(s.outcome)}</td>'
            f'<td class="num">{s.messages_lost}</td><td class="num">{s.client_errors}</td>'
            f'<td class="num">{_ms(s.median_downtime())}</td>'
            f'<td class="sig">{escape(normalized_signature(s) or "-")}</td><td>{verdict}</td></tr>'
        )
    return f'<table class="summary">{head}{"".join(rows)}</table>'


def _artifacts_link(path: str, directory: Path | None) -> str:
    if not path:
        return ""
    href = os.path.relpath(path, directory) if directory is not None else path
    return f'<p>Artifacts: <a href="{escape(href)}">{escape(href)}</a></p>'


def _result(entry: ScenarioResult, i: int, directory: Path | None) -> str:
    parts = [
        f'<div class="result" id="{_anchor(entry, i)}">',
        f"<h3>{escape(entry.name)} [{escape(entry.backend)}, {escape(entry.variant)}]"
        f' — <span class="{outcome_class(entry.outcome)}">{escape(entry.outcome)}</span></h3>',
        f"<p>{escape(entry.reason)}</p>",
    ]
    if entry.criu_error:
        parts.append(f'<p class="sig">{escape(entry.criu_error)}</p>')
    # The bundle lies in the report directory; the run directory may be on another machine.
    parts.append(_artifacts_link(entry.bundle or entry.artifacts, directory))
    steps = sorted({p.step for c in entry.cycles for p in c.phases},
                   key=lambda s: list(STEP_COLOURS).index(s) if s in STEP_COLOURS else 99)
    if steps:
        parts.append(legend(steps))
    for c in entry.cycles:
        parts.append(f"<h4>cycle {c.cycle}: {escape(c.outcome)}, downtime "
                     f"{_ms(c.downtime_ms)} ms, lost {c.messages_lost}</h4>")
        parts.append(timeline_svg(c))
    parts.append("</div>")
    return "\n".join(parts)


def render(
    results: RunReport,
    comparison: Comparison | None = None,
    nights: list[Night] | None = None,
    directory: Path | None = None,
) -> str:
    """The whole page. directory is where the page will live (for relative artifact links)."""
    title = f"criu-harness nightly {results.stamp or ''}".strip()
    scenarios = results.scenarios
    good = sum(1 for s in scenarios if outcome_class(s.outcome) != "bad")
    body = [
        f"<h1>{escape(title)}</h1>",
        f"<p>{good} of {len(scenarios)} result(s) as expected; "
        f"{results.iterations or 1} migration(s) per result.</p>",
        "<h2>Environment</h2>", _environment(results),
        "<h2>Compared with the previous night</h2>", _comparison(comparison),
        "<h2>Results</h2>", _summary(results, comparison),
        *(["<h2>Atlas</h2>", "<p>The results of the scenarios that name an IPC mechanism: "
           "what CRIU does with each (see docs/atlas.md).</p>", atlas_of(results).html_grid()]
          if any(s.mechanism for s in scenarios) else []),
        *(["<h2>Fault matrix</h2>", faults] if (faults := fault_table(results)) else []),
        "<h2>Downtime trend</h2>", trend_svg(nights or []),
        "<h2>Timelines</h2>",
        "<p>Dots: the client's answered round trips; shaded bands: the migration's steps, one "
        "lane per process; the dashed line is the start of the migration.</p>",
        *(_result(s, i, directory) for i, s in enumerate(scenarios)),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}{ATLAS_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
