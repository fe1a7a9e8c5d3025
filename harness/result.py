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
    # Per role: CRIU's statistics (harness.stats.CriuStats), the image size on disk and the
    # harness's own time for each step of that role (ms).
    stats: dict[str, Any] = field(default_factory=dict)
    # What a process could see change across the migration (harness.fingerprint.Difference).
    differences: list[dict[str, Any]] = field(default_factory=list)
    # The client's answered round trips around the migration, [wall time, rtt ms] each: with
    # the phases (wall times too) this draws the migration's timeline.
    timeline: list[list[float]] = field(default_factory=list)


@dataclass
class DowntimeSummary:
    """The client-observed downtime over a scenario's cycles (ms), and their losses summed."""

    cycles: int
    min_ms: float
    median_ms: float
    p95_ms: float
    max_ms: float
    messages_lost: int = 0
    client_errors: int = 0

    @classmethod
    def of(cls, cycles: list[CycleResult]) -> DowntimeSummary | None:
        values = sorted(c.downtime_ms for c in cycles if c.downtime_ms is not None)
        if not values:
            return None
        return cls(
            cycles=len(cycles),
            min_ms=values[0],
            median_ms=round(percentile(values, 50), 3),
            p95_ms=round(percentile(values, 95), 3),
            max_ms=values[-1],
            messages_lost=sum(c.messages_lost for c in cycles),
            client_errors=sum(c.client_errors for c in cycles),
        )


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile of values, interpolated between the closest ranks (as numpy's
    default): with few cycles, the p95 lies between the two largest."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


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
    artifacts: str = ""  # the kept run directory ("" when it was removed)
    bundle: str | None = None  # its .tar.gz in the report directory, if there is one
    reason: str = ""
    duration_s: float = 0.0
    cycles: list[CycleResult] = field(default_factory=list)
    downtime_summary: DowntimeSummary | None = None

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
