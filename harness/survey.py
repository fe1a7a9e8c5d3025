"""Taking the atlas: every mechanism scenario under each of its plans, on each CRIU binary,
with inspect's prediction of each dump judged against the dump itself.

A CRIU whose ``criu check`` fails on this kernel (Debian 12's 3.17 here) runs nothing: each of
its cells is a result that says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import environment, report, scenario
from harness.atlas import Atlas, atlas_of
from harness.behaviour import CRIU_UNUSABLE
from harness.criu import get_backend
from harness.criu.binaries import CriuBuild, check, installed
from harness.errors import HarnessError, UsageError
from harness.forecast import ForecastRun, judge
from harness.plan import PLANS
from harness.report import RunReport
from harness.result import Keep, Outcome, ScenarioResult

__all__ = ["Survey", "mechanism_scenarios"]


def mechanism_scenarios(names: Sequence[str] = ()) -> list[scenario.Scenario]:
    """The built-in scenarios that name a mechanism (or those named: scenarios or mechanisms)."""
    loaded = [scenario.load(p) for p in scenario.builtin_paths()]
    with_mechanism = [s for s in loaded if s.mechanism]
    if not names:
        return with_mechanism
    chosen = [s for s in with_mechanism if s.name in names or s.mechanism in names]
    unknown = set(names) - {s.name for s in chosen} - {s.mechanism for s in chosen}
    if unknown:
        known = ", ".join(s.mechanism for s in with_mechanism)
        raise UsageError(f"unknown mechanism(s) {', '.join(sorted(unknown))} (known: {known})")
    return chosen


@dataclass(frozen=True)
class Cell:
    scenario: scenario.Scenario
    plan: str
    criu: CriuBuild


class Survey:
    """The atlas's runs; ``run`` returns the atlas and the results it is drawn from."""

    def __init__(
        self,
        binaries: Sequence[str] = (),
        names: Sequence[str] = (),
        all_plans: bool = False,
        backend: str = "cli",
        iterations: int = 1,
        bundle_into: Path | None = None,
    ) -> None:
        paths = list(binaries) or installed()
        if not paths:
            raise UsageError("no criu found (run scripts/install-criu, or pass --criu PATH)")
        self.builds = [check(p) for p in paths]  # usage errors (no such binary) come now
        self.scenarios = mechanism_scenarios(names)
        self.all_plans = all_plans
        self.backend_name = backend
        self.iterations = iterations
        self.bundle_into = bundle_into

    def plans(self, s: scenario.Scenario) -> list[str]:
        own = [s.plan, *sorted(p for p in s.plan_expect if p != s.plan)]
        return own + [p for p in PLANS if p not in own] if self.all_plans else own

    def cells(self) -> list[Cell]:
        return [Cell(s, p, b) for b in self.builds for s in self.scenarios for p in self.plans(s)]

    def run(self, echo: Callable[[str], None] = print) -> tuple[Atlas, RunReport]:
        usable = [b for b in self.builds if b.usable]
        env = environment.describe(get_backend("cli", usable[0].path).criu) if usable else {}
        env["criu"] = [b.to_json() for b in self.builds]
        run = RunReport(criu_version=", ".join(b.version for b in self.builds), backend="atlas",
                        environment=env, iterations=self.iterations, started=round(time.time(), 3))
        predictions: dict[tuple[str, str, str], tuple[str, str]] = {}
        backends = {b.path: get_backend(self.backend_name, b.path) for b in usable}
        for cell in self.cells():
            s, build = cell.scenario, cell.criu
            expected = s.expectation(cell.plan, build.version).outcome
            if not build.usable:
                result = ScenarioResult(
                    name=s.name, expected=expected, outcome=Outcome.SKIPPED,
                    backend=self.backend_name, plan=cell.plan, mechanism=s.mechanism,
                    criu_version=build.version, reason=f"{CRIU_UNUSABLE}{build.check_error}")
            else:
                try:
                    forecast = ForecastRun(s, backends[build.path], plan=cell.plan,
                                           iterations=self.iterations, keep=Keep.FAILED,
                                           bundle_into=self.bundle_into)
                except HarnessError as exc:  # a plan the scenario cannot take
                    result = ScenarioResult(name=s.name, expected=expected, backend=self.backend_name,
                                            plan=cell.plan, mechanism=s.mechanism,
                                            criu_version=build.version, reason=str(exc))
                else:
                    result = forecast.run()
                    j = judge(s.name, cell.plan, forecast.predictions, result)
                    said = str(j.predicted) + (f": {j.predicted_signature}" if j.predicted_signature else "")
                    predictions[(s.name, cell.plan, build.version)] = (said, j.verdict)
            run.scenarios.append(result)
            echo(f"criu {build.version:<7} {report.line(result, 30)}")
            if not result.ok and result.reason:
                echo(f"    why: {result.reason}")
        run.finished = round(time.time(), 3)
        return atlas_of(run, predictions), run
