"""A scenario's dumps foreseen: its workloads started as for a migration, and each role's tree
inspected (harness.migratability) in the plan's dump order just before the first migration.

``inspect --scenario`` stops there (nothing is dumped); the atlas and the accuracy test go on
and migrate, so the prediction can be judged against the dump that really happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.criu import Backend
from harness.fields import JsonObject
from harness.migratability import DumpOptions, Prediction, Verdict, overall, predict
from harness.process import Workload
from harness.result import Keep, ScenarioResult
from harness.runner import ScenarioRun
from harness.scenario import Scenario

__all__ = ["ForecastRun", "Judgement", "inspect_scenario", "judge"]


class ForecastRun(ScenarioRun):
    """A scenario run that predicts each role's dump before the first migration; with
    ``stop`` it ends there, and nothing is dumped."""

    def __init__(
        self,
        scenario: Scenario,
        backend: Backend,
        plan: str | None = None,
        stop: bool = False,
        extra: DumpOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scenario, backend, plan=plan, **kwargs)
        self.stop = stop
        scenario_opts = scenario.criu.options("dump", Path("/nonexistent"), "dump.log")
        own = DumpOptions.of(scenario_opts, backend.criu.version())
        if extra is not None:  # options given on the command line add to the scenario's
            own = DumpOptions(*(getattr(own, f) or getattr(extra, f) for f in own.__dataclass_fields__))
        self.options = own
        self.predictions: list[Prediction] = []

    def before_migrations(self, workloads: dict[str, Workload]) -> str | None:
        roles = list(self.plan.dump)
        roots = [workloads[role].pid for role in roles]
        self.predictions = predict(roots, self.options, roles=roles)
        return "inspected; nothing dumped" if self.stop else None


def inspect_scenario(
    scenario: Scenario, backend: Backend, plan: str | None = None, extra: DumpOptions | None = None
) -> tuple[list[Prediction], DumpOptions, ScenarioResult]:
    """Start the scenario's workloads, predict their dumps, stop them: nothing is dumped."""
    run = ForecastRun(scenario, backend, plan=plan, stop=True, extra=extra, keep=Keep.NEVER,
                      fingerprint=False)
    result = run.run()
    return run.predictions, run.options, result


@dataclass(frozen=True)
class Judgement:
    """A prediction against the dump that really happened."""

    scenario: str
    plan: str
    predicted: Verdict
    predicted_signature: str | None
    actual: str  # "dumps", "refused", or "not run" (the run ended before any dump)
    actual_signature: str | None
    verdict: str  # right, wrong, no opinion; "not run" when there was no dump to judge by

    def line(self) -> str:
        said = str(self.predicted) + (f" ({self.predicted_signature!r})" if self.predicted_signature else "")
        was = self.actual + (f" ({self.actual_signature})" if self.actual_signature else "")
        return f"{self.verdict:<10} {self.scenario} [{self.plan}]: predicted {said}; criu dump {was}"

    def to_json(self) -> JsonObject:
        return dict(self.__dict__) | {"predicted": str(self.predicted)}


def judge(scenario: str, plan: str, predictions: list[Prediction], result: ScenarioResult) -> Judgement:
    """Right when the prediction says what the first failing dump (or no failing dump) did, a
    refusal's signature included."""
    verdict, first = overall(predictions)
    signature = first.refusal.signature if first is not None and first.refusal else None
    calls = [c for cycle in result.cycles[:1] for c in cycle.calls if c.action == "dump"]
    failed = next((c for c in calls if c.error), None)
    actual = "not run" if not calls else ("refused" if failed else "dumps")
    actual_signature = result.cycles[0].criu_error if failed and result.cycles else None
    if verdict is Verdict.NO_OPINION:
        judged = "no opinion"
    elif actual == "not run":
        judged = "not run"
    elif verdict is Verdict.REFUSED:
        judged = "right" if failed and signature and signature in (failed.error or "") else "wrong"
    else:
        judged = "right" if actual == "dumps" else "wrong"
    return Judgement(scenario, plan, verdict, signature, actual, actual_signature, judged)
