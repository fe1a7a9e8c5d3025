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

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness import (
    environment,
    faultrun,
    faults,
    parallel,
    report,
    scenario,
)
from harness.behaviour import CRIU_UNUSABLE
from harness.compare import DEFAULT_THRESHOLD, load_results
from harness.criu import BACKENDS, Backend, binaries, get_backend
from harness.errors import HarnessError, UsageError
from harness.faults import FaultCase
from harness.publication import (
    DEFAULT_OUT,
    NightResult,
    dated_dirs,
    merge_night,
    new_dated_dir,
    publish,
)
from harness.report import RunReport
from harness.result import Keep, Outcome, ScenarioResult
from harness.rundir import check_output_dir
from harness.runner import ScenarioRun
from harness.shards import Shard
from harness.transport import check_transport

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



@dataclass(frozen=True)
class Cell:
    """One result of the matrix: a scenario under a backend and a plan (and a CRIU binary,
    with --criu; "" is the night's one; and in the fault matrix, a CRIU fault injected: the
    scenario is then the case's variant); its pages sent by a transport, its workloads isolated
    so (None: the scenario's own)."""

    scenario: scenario.Scenario
    backend: str
    plan: str
    criu: str = ""
    fault: FaultCase | None = None
    transport: str = "local"
    isolation: str | None = None


def plans_for(s: scenario.Scenario) -> list[str]:
    """The scenario's own plan, then every plan its file gives an ``[expect.plan.X]`` for."""
    return [s.plan, *sorted(p for p in s.plan_expect if p != s.plan)]


def cells(
    scenarios: Iterable[scenario.Scenario],
    backends: Sequence[str],
    binaries: Sequence[str] = ("",),
    transports: Sequence[str] = ("local",),
) -> list[Cell]:
    """Every plan of every scenario locally, on each CRIU binary; then each other transport for
    the scenarios that migrate, under their own plan, with --isolation ns (lazy needs it;
    page-server alike, so the two compare), on the night's CRIU."""
    scenarios = list(scenarios)
    out = [Cell(s, b, p, c) for c in binaries for s in scenarios for b in backends
           for p in plans_for(s)] if "local" in transports else []
    out += [
        Cell(s, b, s.plan, "", None, t, "ns")
        for t in transports if t != "local"
        for s in scenarios if s.expect.outcome == "migrates"
        for b in backends
    ]
    return out


def faults_selected(codes: Sequence[int] | None) -> list[FaultCase]:
    """The fault matrix's cases for these codes (every case for none)."""
    return faults.select(list(codes) if codes else None)


def _scenarios(
    names: Sequence[str], only_faults: bool
) -> tuple[list[scenario.Scenario], list[tuple[str, str]]]:
    """The night's scenarios (none for the fault matrix alone), and those that do not load."""
    if only_faults:
        return [], []
    if names:
        return [scenario.find(n) for n in names], []
    return _load_builtins()


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
        transports: Sequence[str] = ("local",),
        jobs: int = 1,
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
        self.scenarios, self.broken = _scenarios(names, only_faults)
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
        self.criu_args = (criu_binary, criu_timeout, criu_fault)
        self.say: Callable[[str], None] = print
        self.transports = [check_transport(t) for t in transports]
        if jobs < 1:
            raise UsageError(f"jobs must be at least 1, not {jobs}")
        self.jobs = jobs

    def cells(self) -> list[Cell]:
        every = cells(self.scenarios, list(self.backends),
                      [b.path for b in self.builds.values()] or [""], self.transports)
        # The fault matrix runs on the night's own CRIU.
        every += [Cell(variant, b, variant.plan, "", case) for case, variant in self.faults
                  for b in self.backends]
        return self.shard.take(every) if self.shard else every

    def run(self, echo: Callable[[str], None] = print) -> NightResult:
        now = datetime.now(timezone.utc)
        directory = new_dated_dir(self.out, now)
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
        self.say = lambda line: echo(f"note: {line}")

        def show(result: ScenarioResult) -> None:
            on = f"criu {result.criu_version:<7} " if self.builds and result.criu_version else ""
            echo(f"{on}{result.backend:<4} {report.line(result)}")
            if not result.ok and result.reason:
                echo(f"     why: {result.reason}")

        # Side by side (-j): the cells a plain run takes; faults and other CRIUs one by one.
        every = self.cells()
        side = [c for c in every if self.jobs > 1 and c.fault is None and not c.criu]
        run.scenarios += self._run_parallel(side, directory / "artifacts", show) if side else []
        for cell in (c for c in every if c not in side):
            result = self._run_cell(cell, directory / "artifacts")
            run.scenarios.append(result)
            show(result)
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

    def _run_parallel(
        self, cells: list[Cell], artifacts: Path, show: Callable[[ScenarioResult], None]
    ) -> list[ScenarioResult]:
        """These cells, self.jobs at a time (harness.parallel); a cell that cannot be set up is
        its own error result, as in _run_cell."""
        binary, timeout, fault = self.criu_args
        jobs = [
            parallel.Job(cell.scenario, cell.backend, binary, timeout, fault, {
                "plan": cell.plan, "iterations": self.iterations, "keep": Keep.FAILED,
                "bundle_into": artifacts, "transport": cell.transport,
                "isolation": cell.isolation,
            })
            for cell in cells
        ]
        return parallel.run_jobs(jobs, self.jobs, lambda _, result: show(result))
