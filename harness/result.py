"""Results as data: the terminal table, results.json and pytest's reports are drawn from these."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from typing import Any

OUTCOMES = ("passed", "failed", "xfailed", "xpassed", "error", "skipped")
# Outcomes that mean "as expected": the run exits 0 only if every scenario has one.
GOOD = ("passed", "xfailed", "skipped")


@dataclass
class CycleResult:
    """One migration of a running workload (a scenario may migrate it several times)."""

    cycle: int
    outcome: str
    messages_lost: int = 0
    client_errors: int = 0
    downtime_ms: float | None = None
    criu_error: str | None = None
    reason: str = ""
    phases: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    # The client's answered round trips around the migration, [wall time, rtt ms] each: with
    # the phases (wall times too) this draws the migration's timeline.
    timeline: list[list[float]] = field(default_factory=list)


@dataclass
class ScenarioResult:
    """The outcome of one scenario under one backend and plan."""

    name: str
    expected: str  # "migrates" | "fails"
    outcome: str = "error"
    backend: str = ""
    plan: str = ""
    messages_lost: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    timeouts: int = 0
    client_errors: int = 0
    sent: int = 0
    answered: int = 0
    downtime_ms: float | None = None
    criu_error: str | None = None
    resumed_after_failure: bool | None = None
    artifacts: str = ""
    reason: str = ""
    duration_s: float = 0.0
    cycles: list[CycleResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome in GOOD

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunReport:
    """A whole run: the environment it ran in and every scenario's result."""

    criu_version: str
    backend: str
    kernel: str = field(default_factory=platform.release)
    scenarios: list[ScenarioResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.scenarios)

    def to_json(self) -> dict[str, Any]:
        return {
            "criu_version": self.criu_version,
            "kernel": self.kernel,
            "backend": self.backend,
            "scenarios": [s.to_json() for s in self.scenarios],
        }
