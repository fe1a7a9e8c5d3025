"""The nightly matrix: every built-in scenario under every backend and every plan it names.

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

from harness import environment, faultrun, faults, history, html, junit, report, scenario
from harness.behaviour import CRIU_UNUSABLE
from harness.compare import DEFAULT_THRESHOLD, Comparison, compare, load_results
from harness.criu import BACKENDS, Backend, binaries, get_backend
from harness.errors import HarnessError, UsageError
from harness.faults import FaultCase
from harness.report import RunReport
from harness.result import Keep, Outcome, ScenarioResult
from harness.rundir import check_output_dir, private_dir
from harness.runner import ScenarioRun
from harness.shards import Shard, merge

__all__ = [
    "DEFAULT_OUT",
    "Cell",
    "Night",
    "NightResult",
    "cells",
    "dated_dirs",
    "merge_night",
    "plans_for",
    "publish",
]

DEFAULT_OUT = Path("reports/nightly")
# Seconds in the name: two runs in one minute (a retry, a test) still get their own directory.
STAMP_FORMAT = "%Y-%m-%dT%H%M%SZ"
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{6}Z(?:-\d+)?$")


@dataclass(frozen=True)
class Cell:
    """One result of the matrix: a scenario under a backend and a plan (and a CRIU binary,
    with --criu; "" is the night's one; and in the fault matrix, a CRIU fault injected: the
    scenario is then the case's variant)."""

    scenario: scenario.Scenario
    backend: str
    plan: str
    criu: str = ""
    fault: FaultCase | None = None


def plans_for(s: scenario.Scenario) -> list[str]:
    """The scenario's own plan, then every plan its file gives an ``[expect.plan.X]`` for."""
    return [s.plan, *sorted(p for p in s.plan_expect if p != s.plan)]


def cells(
    scenarios: Iterable[scenario.Scenario], backends: Sequence[str], binaries: Sequence[str] = ("",)
) -> list[Cell]:
    return [Cell(s, b, p, c) for c in binaries for s in scenarios for b in backends
            for p in plans_for(s)]


def faults_selected(codes: Sequence[int] | None) -> list[FaultCase]:
    """The fault matrix's cases for these codes (every case for none)."""
    return faults.select(list(codes) if codes else None)


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
        criu_binaries: Sequence[str] = (),
        shard: Shard | None = None,
        faults: Sequence[int] | None = None,
        only_faults: bool = False,
    ) -> None:
        if iterations < 1:
            raise UsageError(f"iterations must be at least 1, not {iterations}")
        if not math.isfinite(threshold) or threshold < 0:
            raise UsageError(f"threshold must be a finite number, at least 0, not {threshold}")
        if criu_fault is not None and (faults is not None or only_faults):
            # The fault matrix injects each code into its own action: one for all would mix.
            raise UsageError("--criu-fault and the fault matrix (--faults) do not mix")
        # Everything is resolved before the first workload starts: a typo fails in a second.
        check_output_dir(out, "--out")
        self.backends: dict[str, Backend] = {
            b: get_backend(b, criu_binary, criu_timeout, criu_fault) for b in backends
        }
        self.broken: list[tuple[str, str]] = []
        if only_faults:
            self.scenarios: list[scenario.Scenario] = []
        elif names:
            self.scenarios = [scenario.find(n) for n in names]
        else:
            self.scenarios, self.broken = _load_builtins()
        # The fault matrix (harness.faults): each case's scenario, loaded now like the others.
        self.faults = [(case, case.variant(case.load())) for case in
                       (faults_selected(faults) if faults is not None or only_faults else [])]
        self.out = out
        self.iterations = iterations
        self.threshold = threshold
        self.previous = previous
        if previous is not None:
            load_results(previous)  # a bad --previous is a usage error now, not after the run
        self.criu = next(iter(self.backends.values())).criu
        # --criu: the matrix once per CRIU binary (a CRIU failing `criu check` here gives
        # results that say so); --shard: only this shard's part of it.
        self.builds = {path: binaries.check(path) for path in criu_binaries}
        self.by_binary: dict[tuple[str, str], Backend] = {
            (b, build.path): get_backend(b, build.path)
            for build in self.builds.values() if build.usable for b in backends
        }
        self.shard = shard

    def cells(self) -> list[Cell]:
        every = cells(self.scenarios, list(self.backends),
                      [b.path for b in self.builds.values()] or [""])
        # The fault matrix runs on the night's own CRIU.
        every += [Cell(variant, b, variant.plan, "", case) for case, variant in self.faults
                  for b in self.backends]
        return self.shard.take(every) if self.shard else every

    def run(self, echo: Callable[[str], None] = print) -> NightResult:
        now = datetime.now(timezone.utc)
        directory = _new_dated_dir(self.out, now)
        previous = self.previous or next(
            (p for p in reversed(dated_dirs(self.out)) if p != directory), None
        )
        env = environment.describe(self.criu)
        if self.builds:
            env["criu"] = [b.to_json() for b in self.builds.values()]
        if self.shard:
            env["shard"] = str(self.shard)
        versions = ", ".join(b.version for b in self.builds.values())
        run = RunReport(criu_version=versions or env["criu_version"], backend="matrix",
                        environment=env, iterations=self.iterations, stamp=directory.name)
        shard = f" (shard {self.shard})" if self.shard else ""
        echo(f"{report.header(run)} | {len(self.cells())} result(s){shard} into {directory}")
        run.started = round(time.time(), 3)
        # A broken scenario file is one result per backend, in the first shard only.
        for name, problems in self.broken if not self.shard or self.shard.index == 1 else ():
            for backend in self.backends:
                result = ScenarioResult(name=name, expected="migrates", backend=backend,
                                        reason=f"scenario file does not load: {problems}")
                run.scenarios.append(result)
                echo(f"{backend:<4} {report.line(result)}")
        for cell in self.cells():
            result = self._run_cell(cell, directory / "artifacts")
            run.scenarios.append(result)
            on = f"criu {result.criu_version:<7} " if cell.criu and result.criu_version else ""
            echo(f"{on}{cell.backend:<4} {report.line(result)}")
            if not result.ok and result.reason:
                echo(f"     why: {result.reason}")
        run.finished = round(time.time(), 3)
        return publish(directory, run, previous, self.threshold, self.out, echo)

    def _run_cell(self, cell: Cell, artifacts: Path) -> ScenarioResult:
        if cell.fault is not None:
            try:
                return faultrun.run_case(cell.fault, self.backends[cell.backend], artifacts,
                                         cell.scenario)
            except HarnessError as exc:
                return ScenarioResult(name=cell.fault.id, expected=cell.scenario.expect.outcome,
                                      backend=cell.backend, plan=cell.plan, reason=str(exc),
                                      fault=cell.fault.record())
        build = self.builds.get(cell.criu)
        if build is not None and not build.usable:
            return ScenarioResult(
                name=cell.scenario.name,
                expected=cell.scenario.expectation(cell.plan, build.version).outcome,
                outcome=Outcome.SKIPPED, backend=cell.backend, plan=cell.plan,
                mechanism=cell.scenario.mechanism or None, criu_version=build.version,
                reason=f"{CRIU_UNUSABLE}{build.check_error}")
        backend = self.by_binary[(cell.backend, cell.criu)] if cell.criu else self.backends[cell.backend]
        try:
            return ScenarioRun(
                cell.scenario,
                backend,
                plan=cell.plan,
                iterations=self.iterations,
                keep=Keep.FAILED,
                bundle_into=artifacts,
            ).run()
        except HarnessError as exc:
            # A plan the scenario cannot take (roles it lacks): that cell's error, not the night's.
            return ScenarioResult(name=cell.scenario.name,
                                  expected=cell.scenario.expectation(cell.plan).outcome,
                                  backend=cell.backend, plan=cell.plan, reason=str(exc))


def publish(
    directory: Path,
    run: RunReport,
    previous: Path | None,
    threshold: float,
    out: Path,
    echo: Callable[[str], None] = print,
) -> NightResult:
    """Write a night's results into its directory: results.json, junit.xml, the comparison
    with the previous night, the history line, report.html (a matrix's, or merged shards')."""
    run.write(directory / report.RESULTS)
    junit.write(run, directory, suite="criu-harness nightly")

    comparison = None
    if previous is not None:
        comparison = compare(load_results(previous), run, threshold,
                             str(previous), str(directory))
        text = "\n".join([*comparison.lines(), comparison.summary()]) + "\n"
        (directory / "compare.txt").write_text(text)
        (directory / "compare.json").write_text(json.dumps(comparison.to_json(), indent=2) + "\n")
        echo(f"compared with {previous}:")
        for line in text.splitlines():
            echo(f"  {line}")
    else:
        echo("no previous night to compare with")

    history_path = out / history.HISTORY
    history.append(history_path, history.entry(directory.name, run, comparison))
    page = html.render(run, comparison, history.read(history_path), directory)
    (directory / html.REPORT).write_text(page)
    good = sum(1 for s in run.scenarios if s.ok)
    if injected := [s for s in run.scenarios if s.fault is not None]:
        met = sum(1 for s in injected if s.ok)
        echo(f"fault matrix: {met} of {len(injected)} expectation(s) met")
    echo(f"{good} of {len(run.scenarios)} result(s) as expected")
    echo(f"report: {directory / html.REPORT}")
    return NightResult(directory, run, comparison, previous)


def merge_night(
    parts: Sequence[Path],
    out: Path = DEFAULT_OUT,
    previous: Path | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    echo: Callable[[str], None] = print,
) -> NightResult:
    """The shards of one night (``matrix --shard I/N`` each) as one night: merged into a new
    dated directory under out, then published like a matrix (compared with the previous night,
    recorded in the history)."""
    run = merge([load_results(p) for p in parts])  # bad files are usage errors, before writing
    if previous is not None:
        load_results(previous)
    directory = _new_dated_dir(out, datetime.now(timezone.utc))
    run.stamp = directory.name
    previous = previous or next((p for p in reversed(dated_dirs(out)) if p != directory), None)
    echo(f"merged {len(parts)} shard(s): {len(run.scenarios)} result(s) into {directory}")
    return publish(directory, run, previous, threshold, out, echo)
