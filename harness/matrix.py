"""The nightly matrix: every built-in scenario under every backend and every plan it names, and
every scenario that migrates under each other transport (page-server, lazy: with --isolation ns,
across the veth pair of harness.netns).

One night writes one dated directory under the base directory::

    reports/nightly/2026-11-28T041233Z/
        results.json    the run (as `run --report`, backend "matrix", plus "environment")
        junit.xml       the same results for CI
        compare.json    against the previous night, when there is one (and compare.txt)
        report.html     the summary table, each migration's timeline, the downtime trend
        artifacts/      a .tar.gz bundle of each result that was not as expected
    reports/nightly/history.jsonl   one line per night
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness import environment, history, html, junit, parallel, report, scenario
from harness.compare import DEFAULT_THRESHOLD, Comparison, compare, load_results
from harness.criu import BACKENDS, Backend, get_backend
from harness.errors import HarnessError, UsageError
from harness.result import Keep, RunReport, ScenarioResult
from harness.rundir import check_output_dir, private_dir
from harness.runner import ScenarioRun
from harness.transport import check_transport

__all__ = [
    "DEFAULT_OUT",
    "Cell",
    "Night",
    "NightResult",
    "cells",
    "dated_dirs",
    "plans_for",
]

DEFAULT_OUT = Path("reports/nightly")
# Seconds in the name: two runs in one minute (a retry, a test) still get their own directory.
STAMP_FORMAT = "%Y-%m-%dT%H%M%SZ"
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{6}Z(?:-\d+)?$")


@dataclass(frozen=True)
class Cell:
    """One result of the matrix: a scenario under a backend and a plan, its pages sent by a
    transport, its workloads isolated so (None: the scenario's own)."""

    scenario: scenario.Scenario
    backend: str
    plan: str
    transport: str = "local"
    isolation: str | None = None


def plans_for(s: scenario.Scenario) -> list[str]:
    """The scenario's own plan, then every plan its file gives an ``[expect.plan.X]`` for."""
    return [s.plan, *sorted(p for p in s.plan_expect if p != s.plan)]


def cells(
    scenarios: Iterable[scenario.Scenario],
    backends: Sequence[str],
    transports: Sequence[str] = ("local",),
) -> list[Cell]:
    """Every plan of every scenario locally; then each other transport for the scenarios that
    migrate, under their own plan, with --isolation ns (lazy needs it; page-server alike, so
    the two compare)."""
    scenarios = list(scenarios)
    out = [Cell(s, b, p) for s in scenarios for b in backends for p in plans_for(s)]
    if "local" not in transports:
        out = []
    out += [
        Cell(s, b, s.plan, t, "ns")
        for t in transports if t != "local"
        for s in scenarios if s.expect.outcome == "migrates"
        for b in backends
    ]
    return out


def _load_builtins() -> tuple[list[scenario.Scenario], list[tuple[str, str]]]:
    """Every built-in scenario that loads, and (name, problems) for each one that does not: a
    broken scenario file is a result of the night, not a reason to skip the night."""
    good: list[scenario.Scenario] = []
    broken: list[tuple[str, str]] = []
    for path in scenario.builtin_paths():
        try:
            good.append(scenario.load(path))
        except scenario.ScenarioError as exc:
            broken.append((path.stem, "; ".join(exc.problems)))
    return good, broken


def dated_dirs(base: Path) -> list[Path]:
    """The nights under base that hold results, oldest first."""
    if not base.is_dir():
        return []

    def order(p: Path) -> tuple[str, int]:
        stamp, _, n = p.name.partition("Z-")
        return (stamp, int(n) if n else 0)

    found = [p for p in base.iterdir() if _STAMP.match(p.name) and (p / report.RESULTS).is_file()]
    return sorted(found, key=order)


def _new_dated_dir(base: Path, now: datetime) -> Path:
    private_dir(base)  # nights hold bundles of memory images: 0700, like everything made here
    stamp = now.strftime(STAMP_FORMAT)
    for n in range(100):
        path = base / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return path
    raise HarnessError(f"{base}: cannot make a directory for {stamp}: 100 already exist")


@dataclass
class NightResult:
    directory: Path
    run: RunReport
    comparison: Comparison | None
    previous: Path | None

    @property
    def ok(self) -> bool:
        return self.run.ok and not (self.comparison and self.comparison.regressions)


class Night:
    """Runs the matrix into a new dated directory, then compares it with the previous night."""

    def __init__(
        self,
        out: Path = DEFAULT_OUT,
        names: Sequence[str] = (),
        backends: Sequence[str] = tuple(BACKENDS),
        iterations: int = 1,
        threshold: float = DEFAULT_THRESHOLD,
        previous: Path | None = None,
        criu_binary: str | None = None,
        criu_timeout: float | None = None,
        criu_fault: int | None = None,
        transports: Sequence[str] = ("local",),
        jobs: int = 1,
    ) -> None:
        if iterations < 1:
            raise UsageError(f"iterations must be at least 1, not {iterations}")
        if not math.isfinite(threshold) or threshold < 0:
            raise UsageError(f"threshold must be a finite number, at least 0, not {threshold}")
        # Everything is resolved before the first workload starts: a typo fails in a second.
        check_output_dir(out, "--out")
        self.backends: dict[str, Backend] = {
            b: get_backend(b, criu_binary, criu_timeout, criu_fault) for b in backends
        }
        if names:
            self.scenarios = [scenario.find(n) for n in names]
            self.broken: list[tuple[str, str]] = []
        else:
            self.scenarios, self.broken = _load_builtins()
        self.out = out
        self.iterations = iterations
        self.threshold = threshold
        self.previous = previous
        if previous is not None:
            load_results(previous)  # a bad --previous is a usage error now, not after the run
        self.criu = next(iter(self.backends.values())).criu
        self.criu_args = (criu_binary, criu_timeout, criu_fault)
        self.say: Callable[[str], None] = print
        self.transports = [check_transport(t) for t in transports]
        if jobs < 1:
            raise UsageError(f"jobs must be at least 1, not {jobs}")
        self.jobs = jobs

    def cells(self) -> list[Cell]:
        return cells(self.scenarios, list(self.backends), self.transports)

    def run(self, echo: Callable[[str], None] = print) -> NightResult:
        now = datetime.now(timezone.utc)
        directory = _new_dated_dir(self.out, now)
        previous = self.previous or next(
            (p for p in reversed(dated_dirs(self.out)) if p != directory), None
        )
        env = environment.describe(self.criu)
        run = RunReport(criu_version=env["criu_version"], backend="matrix", environment=env,
                        iterations=self.iterations, stamp=directory.name)
        echo(f"{report.header(run)} | {len(self.cells())} result(s) into {directory}")
        run.started = round(time.time(), 3)
        for name, problems in self.broken:
            for backend in self.backends:
                result = ScenarioResult(name=name, expected="migrates", backend=backend,
                                        reason=f"scenario file does not load: {problems}")
                run.scenarios.append(result)
                echo(f"{backend:<4} {report.line(result)}")
        self.say = lambda line: echo(f"note: {line}")

        def show(result: ScenarioResult) -> None:
            echo(f"{result.backend:<4} {report.line(result)}")
            if not result.ok and result.reason:
                echo(f"     why: {result.reason}")

        if self.jobs > 1:
            run.scenarios += self._run_parallel(directory / "artifacts", show)
        else:
            for cell in self.cells():
                result = self._run_cell(cell, directory / "artifacts")
                run.scenarios.append(result)
                show(result)
        run.finished = round(time.time(), 3)
        run.write(directory / report.RESULTS)
        junit.write(run, directory, suite="criu-harness nightly")

        comparison = None
        if previous is not None:
            comparison = compare(load_results(previous), run, self.threshold,
                                 str(previous), str(directory))
            text = "\n".join([*comparison.lines(), comparison.summary()]) + "\n"
            (directory / "compare.txt").write_text(text)
            (directory / "compare.json").write_text(json.dumps(comparison.to_json(), indent=2) + "\n")
            echo(f"compared with {previous}:")
            for line in text.splitlines():
                echo(f"  {line}")
        else:
            echo("no previous night to compare with")

        history_path = self.out / history.HISTORY
        history.append(history_path, history.entry(directory.name, run, comparison))
        page = html.render(run, comparison, history.read(history_path), directory)
        (directory / html.REPORT).write_text(page)
        good = sum(1 for s in run.scenarios if s.ok)
        echo(f"{good} of {len(run.scenarios)} result(s) as expected")
        echo(f"report: {directory / html.REPORT}")
        return NightResult(directory, run, comparison, previous)

    def _run_parallel(
        self, artifacts: Path, show: Callable[[ScenarioResult], None]
    ) -> list[ScenarioResult]:
        """The cells, self.jobs at a time (harness.parallel); a cell that cannot be set up is
        its own error result, as in _run_cell."""
        binary, timeout, fault = self.criu_args
        jobs = [
            parallel.Job(cell.scenario, cell.backend, binary, timeout, fault, {
                "plan": cell.plan, "iterations": self.iterations, "keep": Keep.FAILED,
                "bundle_into": artifacts, "transport": cell.transport,
                "isolation": cell.isolation,
            })
            for cell in self.cells()
        ]
        return parallel.run_jobs(jobs, self.jobs, lambda _, result: show(result))

    def _run_cell(self, cell: Cell, artifacts: Path) -> ScenarioResult:
        try:
            return ScenarioRun(
                cell.scenario,
                self.backends[cell.backend],
                plan=cell.plan,
                iterations=self.iterations,
                keep=Keep.FAILED,
                bundle_into=artifacts,
                transport=cell.transport,
                isolation=cell.isolation,
                say=self.say,
            ).run()
        except HarnessError as exc:
            # A plan the scenario cannot take (roles it lacks): that cell's error, not the night's.
            return ScenarioResult(name=cell.scenario.name,
                                  expected=cell.scenario.expectation(cell.plan).outcome,
                                  backend=cell.backend, plan=cell.plan, reason=str(exc),
                                  transport=cell.transport, isolation=cell.isolation or "")
