"""Results as data: one migration cycle, one scenario. The terminal lines, results.json
(harness.report.RunReport), JUnit and pytest's reports are drawn from these.

The JSON written by ``to_json`` is read back by ``from_json`` with every field's type checked:
a results file that does not hold what it should is one ``UsageError`` naming the field.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from harness.criu.backend import CriuCall
from harness.difference import Difference
from harness.fields import FieldError, Fields, JsonObject, load_json
from harness.outcome import Keep, Outcome, Step, read_enum
from harness.stats import RoleStats

__all__ = [
    "CycleResult",
    "DowntimeSummary",
    "InjectedFault",
    "Keep",
    "Outcome",
    "Phase",
    "RoleStats",
    "ScenarioResult",
    "Step",
    "percentile",
]



@dataclass
class Phase:
    """A step of the migration as it ran (wall-clock seconds, comparable with event logs)."""

    step: Step
    role: str
    started: float
    finished: float
    ok: bool = True

    @property
    def duration_ms(self) -> float:
        return (self.finished - self.started) * 1e3

    def to_json(self) -> JsonObject:
        return {"step": str(self.step), "role": self.role, "started": self.started,
                "finished": self.finished, "ok": self.ok}

    @classmethod
    def from_json(cls, f: Fields) -> Phase:
        return cls(read_enum(Step, f, "step"), f.text("role"), f.number("started"),
                   f.number("finished"), f.boolean("ok", True))


@dataclass
class CycleResult:
    """One migration of a running workload (a scenario may migrate it several times)."""

    cycle: int
    outcome: Outcome
    messages_lost: int = 0
    client_errors: int = 0
    downtime_ms: float | None = None
    criu_error: str | None = None
    reason: str = ""
    phases: list[Phase] = field(default_factory=list)
    calls: list[CriuCall] = field(default_factory=list)
    stats: dict[str, RoleStats] = field(default_factory=dict)  # by role
    # What a process could see change across the migration.
    differences: list[Difference] = field(default_factory=list)
    # The client's answered round trips around the migration, (wall time, rtt ms) each: with
    # the phases (wall times too) this draws the migration's timeline.
    timeline: list[tuple[float, float]] = field(default_factory=list)

    def to_json(self) -> JsonObject:
        return {
            "cycle": self.cycle,
            "outcome": str(self.outcome),
            "messages_lost": self.messages_lost,
            "client_errors": self.client_errors,
            "downtime_ms": self.downtime_ms,
            "criu_error": self.criu_error,
            "reason": self.reason,
            "phases": [p.to_json() for p in self.phases],
            "calls": [c.to_json() for c in self.calls],
            "stats": {role: s.to_json() for role, s in self.stats.items()},
            "differences": [d.to_json() for d in self.differences],
            "timeline": [list(point) for point in self.timeline],
        }

    @classmethod
    def from_json(cls, f: Fields) -> CycleResult:
        timeline = []
        for i, point in enumerate(f.number_lists("timeline")):
            if len(point) != 2:
                raise FieldError(f"{f._path('timeline')}[{i}]", "must be [time, rtt]")
            timeline.append((point[0], point[1]))
        return cls(
            cycle=f.integer("cycle"),
            outcome=read_enum(Outcome, f, "outcome"),
            messages_lost=f.integer("messages_lost", 0),
            client_errors=f.integer("client_errors", 0),
            downtime_ms=f.optional_number("downtime_ms"),
            criu_error=f.optional_text("criu_error"),
            reason=f.text("reason", ""),
            phases=f.items("phases", Phase.from_json),
            calls=f.items("calls", CriuCall.from_json),
            stats={role: RoleStats.from_json(s) for role, s in f.entries("stats")},
            differences=f.items("differences", Difference.from_json),
            timeline=timeline,
        )


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile of values, interpolated between the closest ranks (as numpy's
    default): with few cycles, the p95 lies between the two largest."""
    if not values:
        raise ValueError("percentile of no values")
    if len(values) == 1 or pct <= 0:
        return min(values)
    if pct >= 100:
        return max(values)
    # "inclusive" is numpy's linear interpolation; the cut points are the 1st..99th percentiles.
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(pct) - 1]


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
            median_ms=round(statistics.median(values), 3),
            p95_ms=round(percentile(values, 95), 3),
            max_ms=values[-1],
            messages_lost=sum(c.messages_lost for c in cycles),
            client_errors=sum(c.client_errors for c in cycles),
        )

    def to_json(self) -> JsonObject:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, f: Fields) -> DowntimeSummary:
        return cls(f.integer("cycles"), f.number("min_ms"), f.number("median_ms"),
                   f.number("p95_ms"), f.number("max_ms"), f.integer("messages_lost", 0),
                   f.integer("client_errors", 0))


@dataclass
class InjectedFault:
    """The CRIU fault a result of the fault matrix ran with, and what the harness expected of
    it (harness.faults): the result's outcome says whether that held."""

    code: int
    name: str  # CRIU's own: FI_DUMP_EARLY
    action: str  # where it was injected: dump, restore, or both
    expectation: str  # what must hold, in words
    observed: str = ""  # what the code was seen to do, where the table was written

    def to_json(self) -> JsonObject:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, f: Fields) -> InjectedFault:
        return cls(f.integer("code"), f.text("name"), f.text("action"), f.text("expectation"),
                   f.text("observed", ""))


@dataclass
class ScenarioResult:
    """The outcome of one scenario under one backend and plan."""

    name: str
    expected: str  # "migrates" | "fails"
    outcome: Outcome = Outcome.ERROR
    backend: str = ""
    plan: str = ""
    # How the workloads ran (harness.isolation) and how their pages travelled
    # (harness.transport): "" in results written before either existed.
    isolation: str = ""
    transport: str = ""
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
    # The scenario's IPC mechanism (the atlas's row) and the CRIU version it ran on (a matrix
    # may run several): None in files written before they were recorded.
    mechanism: str | None = None
    criu_version: str | None = None
    fault: InjectedFault | None = None  # in the fault matrix only
    # Where the workload was migrated to (run --destination): the receiver's address.
    destination: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome.as_expected

    @property
    def variant(self) -> str:
        """The plan, and what else sets this result apart from another of its scenario and
        backend: a transport other than local, an isolation other than none
        ("server-first/lazy/ns"). Results written before either existed keep their plan."""
        extra = [x for x in (self.transport, self.isolation) if x not in ("", "local", "none")]
        return "/".join([self.plan, *extra])

    def median_downtime(self) -> float | None:
        """The median of the cycles' downtimes (ms), or the scenario's own without cycles."""
        values = [c.downtime_ms for c in self.cycles if c.downtime_ms is not None]
        return statistics.median(values) if values else self.downtime_ms

    def to_json(self) -> JsonObject:
        nested = ("cycles", "downtime_summary", "fault")
        data = {k: v for k, v in self.__dict__.items() if k not in nested}
        data["outcome"] = str(self.outcome)
        data["cycles"] = [c.to_json() for c in self.cycles]
        summary = self.downtime_summary
        data["downtime_summary"] = summary.to_json() if summary is not None else None
        if self.fault is not None:
            data["fault"] = self.fault.to_json()
        return data

    @classmethod
    def from_json(cls, f: Fields) -> ScenarioResult:
        summary = f.optional_obj("downtime_summary")
        fault = f.optional_obj("fault")
        return cls(
            name=f.text("name"),
            expected=f.text("expected", "migrates"),
            outcome=read_enum(Outcome, f, "outcome"),
            backend=f.text("backend", ""),
            plan=f.text("plan", ""),
            isolation=f.text("isolation", ""),
            transport=f.text("transport", ""),
            **{key: f.integer(key, 0) for key in (
                "messages_lost", "duplicates", "out_of_order", "timeouts", "client_errors",
                "sent", "answered")},
            downtime_ms=f.optional_number("downtime_ms"),
            criu_error=f.optional_text("criu_error"),
            resumed_after_failure=f.optional_boolean("resumed_after_failure"),
            artifacts=f.text("artifacts", ""),
            bundle=f.optional_text("bundle"),
            reason=f.text("reason", ""),
            duration_s=f.number("duration_s", 0.0),
            cycles=f.items("cycles", CycleResult.from_json),
            downtime_summary=DowntimeSummary.from_json(summary) if summary is not None else None,
            mechanism=f.optional_text("mechanism"),
            criu_version=f.optional_text("criu_version"),
            fault=InjectedFault.from_json(fault) if fault is not None else None,
            destination=f.text("destination", ""),
        )

    @classmethod
    def load(cls, path: Path) -> ScenarioResult:
        """A kept run's result.json."""
        return load_json(path, cls.from_json)
