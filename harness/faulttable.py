"""The fault matrix as one table of the nightly page: a row per fault case (code, scenario),
what the harness expects of it, and per backend whether that held."""

from __future__ import annotations

from html import escape

from harness.faults import OBSERVED_WITH
from harness.report import RunReport
from harness.result import Outcome, ScenarioResult

__all__ = ["html"]


def _cell(result: ScenarioResult | None) -> str:
    if result is None:
        return "<td>-</td>"
    met = "met" if result.ok else "NOT met"
    klass = "meh" if result.outcome is Outcome.SKIPPED else ("good" if result.ok else "bad")
    return (f'<td class="{klass}" title="{escape(result.reason)}">{met} '
            f"({escape(result.outcome)})</td>")


def html(results: RunReport) -> str:
    """The table, or "" when the night ran no fault."""
    injected = [s for s in results.scenarios if s.fault is not None]
    if not injected:
        return ""
    backends = list(dict.fromkeys(results.backend_of(s) for s in injected))
    rows: dict[str, dict[str, ScenarioResult]] = {}
    for s in injected:
        rows.setdefault(s.name, {})[results.backend_of(s)] = s
    met = sum(1 for s in injected if s.ok)
    head = ("<tr><th>code</th><th>CRIU's name</th><th>injected into</th><th>scenario</th>"
            f"<th>what it was seen to do ({escape(OBSERVED_WITH)})</th>"
            "<th>the harness expects</th>"
            + "".join(f"<th>{escape(b)}</th>" for b in backends) + "</tr>")
    body = []
    for name, by_backend in rows.items():
        first = next(iter(by_backend.values()))
        fault = first.fault
        assert fault is not None
        scenario = name.rsplit(".fault-", 1)[0]
        body.append(
            f"<tr><td class=\"num\">{fault.code}</td><td>{escape(fault.name)}</td>"
            f"<td>{escape(fault.action)}</td><td>{escape(scenario)}</td>"
            f"<td>{escape(fault.observed)}</td>"
            f'<td class="sig">{escape(fault.expectation)}</td>'
            + "".join(_cell(by_backend.get(b)) for b in backends) + "</tr>"
        )
    return (f"<p>{met} of {len(injected)} expectation(s) met. Each row injects CRIU's fault "
            "(CRIU_FAULT) into the action named; hover a cell for what happened.</p>"
            f'<table class="summary faults">{head}{"".join(body)}</table>')
