"""The migration atlas: which IPC mechanism survives CRIU, under which plan, on which CRIU.

One cell per (mechanism, plan, CRIU version): what CRIU did (harness.behaviour), the messages
lost or repeated, the downtime, and the signature (CRIU's line, or for a pair CRIU migrated
but did not keep connected, the client's first error). Drawn from a run's results, so the
atlas of a night is also an ordinary results.json that ``compare`` reads.
"""

from __future__ import annotations

import json
import platform
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from harness import environment
from harness.behaviour import client_error, describe, kind
from harness.criu.log import message
from harness.fields import JsonObject
from harness.report import RunReport
from harness.result import ScenarioResult
from harness.rundir import PREFIX

__all__ = ["Atlas", "AtlasCell", "atlas_of", "cells_of"]

ATLAS_JSON = "atlas.json"
ATLAS_HTML = "atlas.html"
ATLAS_MD = "atlas.md"
ATLAS_PAGE = """# The migration atlas

Which IPC between two processes survives a CRIU migration, under which plan, on which CRIU:
each cell is a built-in scenario (`scenarios/atlas/`, and the three of `scenarios/` that name a
mechanism) run for real. Retake it with `sudo .venv/bin/criu-harness atlas --markdown
docs/atlas.md` (every CRIU installed side by side under /opt/criu is a column: see
`scripts/install-criu --version`).

How to read a cell: **migrates** (the echo loop resumed, verified; messages lost or repeated
are counted), **refused at dump** (CRIU refused; the pair lives on), **fails at restore** (the
images do not restore: the workload is lost), **breaks** (CRIU dumped and restored without a
complaint, and the IPC did not come back: the client's first error is the signature),
**criu unusable** (that CRIU fails `criu check` on this kernel). The downtime is the longest
gap between two answered round trips, as the client saw it. Why each mechanism does what it
does, as measured, is the comment at the top of its scenario file (and of its plans').

{header}

{body}"""
_RUN_DIR = re.compile(r"(?:/[^\s/;:'\",]+)*/" + re.escape(PREFIX) + r"[^\s/;:'\",]+")
# What else changes every run in CRIU's lines: pids, ids, addresses, glibc's temporary names.
_VARYING = (
    (re.compile(r"\b(Task|pid) \d+"), r"\1 N"),
    (re.compile(r"\b(mount=|fd=)\d+"), r"\1N"),
    (re.compile(r"@[0-9a-f]{6,}"), "@ADDR"),
    (re.compile(r"\bsem\.[A-Za-z0-9]{6}\b"), "sem.XXXXXX"),
)


def _short(signature: str | None) -> str | None:
    """A signature without what changes every run: source location, run directory, pids."""
    if not signature:
        return None
    text = _RUN_DIR.sub("<run_dir>", message(signature))
    for pattern, replacement in _VARYING:
        text = pattern.sub(replacement, text)
    return text


@dataclass(frozen=True)
class AtlasCell:
    mechanism: str
    scenario: str
    plan: str
    criu: str  # the CRIU version
    kind: str  # harness.behaviour.kind
    behaviour: str  # kind, with what was lost or repeated
    outcome: str
    as_expected: bool
    lost: int
    duplicates: int
    client_errors: int
    downtime_ms: float | None
    signature: str | None
    predicted: str | None = None  # inspect's prediction of the dump, when one was made
    judgement: str | None = None  # right, wrong, no opinion

    def to_json(self) -> JsonObject:
        return dict(self.__dict__)

    @classmethod
    def of(cls, result: ScenarioResult, predicted: str | None = None,
           judgement: str | None = None) -> AtlasCell:
        signature = _short(result.criu_error) or client_error(result)
        if kind(result) == "criu unusable":
            signature = result.reason
        return cls(
            mechanism=result.mechanism or result.name,
            scenario=result.name,
            plan=result.plan,
            criu=result.criu_version or "unknown",
            kind=kind(result),
            behaviour=describe(result),
            outcome=str(result.outcome),
            as_expected=result.ok,
            lost=result.messages_lost,
            duplicates=result.duplicates,
            client_errors=result.client_errors,
            downtime_ms=result.downtime_ms,
            signature=signature,
            predicted=predicted,
            judgement=judgement,
        )


def cells_of(run: RunReport, predictions: dict[tuple[str, str, str], tuple[str, str]] | None = None
             ) -> list[AtlasCell]:
    """The atlas cells of a run: its results whose scenario names a mechanism. predictions:
    (scenario, plan, criu version) -> (prediction, judgement)."""
    found = []
    for result in run.scenarios:
        if not result.mechanism:
            continue
        said = (predictions or {}).get((result.name, result.plan, result.criu_version or ""))
        found.append(AtlasCell.of(result, *(said or (None, None))))
    return found


def _ms(value: float | None) -> str:
    return f"{value:.0f} ms" if value is not None else "-"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3]) or (0,)


@dataclass
class Atlas:
    """A whole atlas: where and when it was taken, with which CRIUs, and its cells."""

    taken: str
    kernel: str
    distribution: str
    backend: str
    criu: list[JsonObject]  # harness.criu.binaries.CriuBuild.to_json() of each
    cells: list[AtlasCell] = field(default_factory=list)

    @property
    def versions(self) -> list[str]:
        return sorted({str(c["version"]) for c in self.criu} | {c.criu for c in self.cells},
                      key=_version_key, reverse=True)

    @property
    def ok(self) -> bool:
        return all(c.as_expected for c in self.cells)

    def rows(self) -> list[tuple[str, str]]:
        """(mechanism, plan) in the order first met."""
        seen: dict[tuple[str, str], None] = {}
        for c in self.cells:
            seen.setdefault((c.mechanism, c.plan), None)
        return list(seen)

    def cell(self, mechanism: str, plan: str, criu: str) -> AtlasCell | None:
        return next((c for c in self.cells
                     if (c.mechanism, c.plan, c.criu) == (mechanism, plan, criu)), None)

    def accuracy(self) -> dict[str, int]:
        counts = {"right": 0, "wrong": 0, "no opinion": 0}
        for c in self.cells:
            if c.judgement in counts:
                counts[c.judgement] += 1
        return counts

    # --- for people ---------------------------------------------------------------------------

    def header(self) -> str:
        crius = ", ".join(
            f"{c['version']}" + ("" if c["usable"] else " (criu check fails)") for c in self.criu)
        return (f"atlas taken {self.taken} | kernel {self.kernel} | {self.distribution} | "
                f"backend {self.backend} | criu {crius}")

    def page(self) -> str:
        """docs/atlas.md: the atlas of this machine, with how to read and retake it."""
        return ATLAS_PAGE.format(header=self.header(), body=self.markdown())

    def table(self) -> list[str]:
        """One line per cell: mechanism, plan, CRIU, what happened, lost, downtime, signature."""
        width = max([9, *(len(c.mechanism) for c in self.cells)])
        lines = [f"{'mechanism':<{width}}  {'plan':<12}  {'criu':<7}  {'what CRIU does':<22}  "
                 f"{'lost':>4}  {'downtime':>8}  signature"]
        for c in sorted(self.cells, key=lambda c: (self.rows().index((c.mechanism, c.plan)),
                                                   [-v for v in _version_key(c.criu)])):
            mark = "" if c.as_expected else "  <-- NOT AS EXPECTED"
            lines.append(f"{c.mechanism:<{width}}  {c.plan:<12}  {c.criu:<7}  {c.behaviour:<22}  "
                         f"{c.lost:>4}  {_ms(c.downtime_ms):>8}  {c.signature or '-'}{mark}")
        return lines

    def _grid(self) -> tuple[list[str], list[list[str]]]:
        head = ["mechanism", "plan", *(f"CRIU {v}" for v in self.versions)]
        body = []
        for mechanism, plan in self.rows():
            row = [mechanism, plan]
            for version in self.versions:
                c = self.cell(mechanism, plan, version)
                if c is None:
                    row.append("")
                    continue
                text = c.behaviour + (f", {_ms(c.downtime_ms)}" if c.kind == "migrates" else "")
                row.append(text if c.as_expected else f"**{text} (not as expected)**")
            body.append(row)
        return head, body

    def markdown(self) -> str:
        head, body = self._grid()
        lines = [
            "| " + " | ".join(head) + " |",
            "|" + "|".join(" --- " for _ in head) + "|",
            *("| " + " | ".join(row) + " |" for row in body),
        ]
        sigs = ["| mechanism | plan | CRIU | signature |", "| --- | --- | --- | --- |"]
        for c in self.cells:
            if c.signature and c.kind != "criu unusable":
                sigs.append(f"| {c.mechanism} | {c.plan} | {c.criu} | `{c.signature}` |")
        unusable = [c for c in self.criu if not c["usable"]]
        out = [*lines, ""]
        for build in unusable:
            out.append(f"CRIU {build['version']} ({build['path']}) is unusable here: `criu check` "
                       f"fails with `{build['check_error']}`; every one of its cells says so.")
            out.append("")
        out += ["Signatures (CRIU's line; for \"breaks\", the client's first error):", "", *sigs]
        acc = self.accuracy()
        if sum(acc.values()):
            out += ["", "`inspect`'s predictions of the dump, judged against it: "
                    + ", ".join(f"{n} {k}" for k, n in acc.items()) + "."]
        return "\n".join(out) + "\n"

    def html_grid(self) -> str:
        """The grid as an HTML table: the atlas page's, and the nightly report's section."""
        head, _ = self._grid()
        rows = []
        for mechanism, plan in self.rows():
            tds = [f"<td>{escape(mechanism)}</td>", f"<td>{escape(plan)}</td>"]
            for version in self.versions:
                c = self.cell(mechanism, plan, version)
                if c is None:
                    tds.append("<td></td>")
                    continue
                cls = "good" if c.kind == "migrates" else ("meh" if c.kind == "criu unusable" else "bad")
                if not c.as_expected:
                    cls = "unexpected"
                title = escape(c.signature or "", quote=True)
                text = escape(c.behaviour) + (f"<br><small>{_ms(c.downtime_ms)}</small>"
                                              if c.kind == "migrates" else "")
                tds.append(f'<td class="{cls}" title="{title}">{text}</td>')
            rows.append("<tr>" + "".join(tds) + "</tr>")
        return html_table(head, rows)

    def html(self) -> str:
        """A self-contained page (no script, inline style), like the nightly report."""
        sigs = "".join(
            f"<tr><td>{escape(c.mechanism)}</td><td>{escape(c.plan)}</td><td>{escape(c.criu)}</td>"
            f"<td class='sig'>{escape(c.signature or '')}</td></tr>"
            for c in self.cells if c.signature)
        return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>CRIU migration atlas</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; margin: 8px 0; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f2f2f2; }}
{ATLAS_CSS}
.sig {{ font-family: ui-monospace, monospace; font-size: 12px; }}
</style></head><body>
<h1>CRIU migration atlas</h1>
<p>{escape(self.header())}</p>
{self.html_grid()}
<h2>Signatures</h2>
<table><tr><th>mechanism</th><th>plan</th><th>CRIU</th><th>signature</th></tr>{sigs}</table>
</body></html>
"""

    # --- for programs -------------------------------------------------------------------------

    def to_json(self) -> JsonObject:
        return {"taken": self.taken, "kernel": self.kernel, "distribution": self.distribution,
                "backend": self.backend, "criu": self.criu, "accuracy": self.accuracy(),
                "cells": [c.to_json() for c in self.cells]}

    def write(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        written = [directory / ATLAS_JSON, directory / ATLAS_HTML, directory / ATLAS_MD]
        written[0].write_text(json.dumps(self.to_json(), indent=2) + "\n")
        written[1].write_text(self.html())
        written[2].write_text(f"{self.header()}\n\n{self.markdown()}")
        return written


# The cells' colours; the nightly report's page adds them to its own style.
ATLAS_CSS = """
table.atlas .good { background: #e5f5e0; } table.atlas .bad { background: #fde8c8; }
table.atlas .meh { background: #f0f0f0; } table.atlas .unexpected { background: #fdd0d0; font-weight: bold; }
"""


def html_table(head: Iterable[str], rows: Iterable[str]) -> str:
    """The atlas grid as an HTML table (also the atlas section of the nightly report)."""
    ths = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f"<table class='atlas'><tr>{ths}</tr>{''.join(rows)}</table>"


def atlas_of(run: RunReport, predictions: dict[tuple[str, str, str], tuple[str, str]] | None = None
             ) -> Atlas:
    """The atlas of a run's results (an atlas's, or a nightly matrix's: its mechanism results)."""
    env = run.environment or {}
    builds = env.get("criu") or [
        {"path": env.get("criu_binary", ""), "version": v, "usable": True, "check_error": None}
        for v in sorted({r.criu_version or run.criu_version for r in run.scenarios if r.mechanism})
    ]
    taken = datetime.fromtimestamp(run.started or time.time(), timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    backends = sorted({r.backend for r in run.scenarios if r.mechanism and r.backend})
    return Atlas(
        taken=taken,
        kernel=run.kernel or platform.release(),
        distribution=str(env.get("distribution") or environment.distribution() or "unknown"),
        backend=", ".join(backends) or run.backend,
        criu=list(builds),
        cells=cells_of(run, predictions),
    )
