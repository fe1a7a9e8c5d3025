"""Results as data: the terminal lines, results.json, JUnit and pytest's reports are drawn from
these, and every reader of a results file goes through ``RunReport.load``.

The JSON written by ``to_json`` is read back by ``from_json`` with every field's type checked:
a results file that does not hold what it should is one ``UsageError`` naming the field.
"""

from __future__ import annotations

import json
import platform
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from harness.criu.backend import CriuCall
from harness.errors import UsageError
from harness.fields import FieldError, Fields, JsonObject
from harness.fingerprint import Difference
from harness.stats import CriuStats

__all__ = [
    "SCHEMA_VERSION",
    "CycleResult",
    "DowntimeSummary",
    "Keep",
    "Outcome",
    "Phase",
    "RoleStats",
    "RunReport",
    "ScenarioResult",
    "Step",
    "percentile",
]

# 1: the first round's files (no "schema" field); 2: the same fields, typed and versioned.
SCHEMA_VERSION = 2


class Outcome(StrEnum):
    """How a scenario (or one migration cycle) ended."""

    PASSED = "passed"
    XFAILED = "xfailed"  # CRIU failed as the scenario expects, and the workload lived on
    FAILED = "failed"
    XPASSED = "xpassed"  # expected to fail, but the migration succeeded
    ERROR = "error"  # the harness could not run it (a workload did not start, bad plan, ...)
    SKIPPED = "skipped"  # a CRIU feature it needs is missing here

    @property
    def as_expected(self) -> bool:
        """The one definition of "as expected": a run exits 0 only if every result is."""
        return self in (Outcome.PASSED, Outcome.XFAILED, Outcome.SKIPPED)


class Step(StrEnum):
    """A step of a migration, in the order a plan runs them."""

    FREEZE = "freeze"
    QUIESCE = "quiesce"
    INSPECT = "inspect"
    DUMP = "dump"
    REAP = "reap"
    RESTORE = "restore"
    RESUME = "resume"
    ROLLBACK = "rollback"


class Keep(StrEnum):
    """Which run directories are kept after the run."""

    ALWAYS = "always"
    FAILED = "failed"  # only those whose outcome is not as expected
    NEVER = "never"

    def keeps(self, outcome: Outcome) -> bool:
        return self is Keep.ALWAYS or (self is Keep.FAILED and not outcome.as_expected)


def _enum(kind: type[Outcome] | type[Step], f: Fields, key: str, default: str | None = None) -> Any:
    text = f.text(key) if default is None else f.text(key, default)
    try:
        return kind(text)
    except ValueError:
        allowed = ", ".join(kind)
        raise FieldError(f._path(key), f"must be one of {allowed}, not {text!r}") from None


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
        return cls(_enum(Step, f, "step"), f.text("role"), f.number("started"),
                   f.number("finished"), f.boolean("ok", True))


@dataclass
class RoleStats:
    """One role's migration as measured: CRIU's statistics (or why they could not be read),
    the image size on disk, and the harness's own time per step (``dump_ms``, ...)."""

    criu: CriuStats | None = None
    criu_error: str | None = None
    image_bytes: int = 0
    harness: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> JsonObject:
        criu = self.criu.to_json() if self.criu is not None else {"error": self.criu_error}
        return {"criu": criu, "image_bytes": self.image_bytes, "harness": self.harness}

    @classmethod
    def from_json(cls, f: Fields) -> RoleStats:
        criu = f.obj("criu")
        error = criu.optional_text("error")
        stats = None if error is not None or not criu.data else CriuStats.from_json(criu)
        return cls(stats, error, f.integer("image_bytes", 0), f.number_map("harness"))


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
            outcome=_enum(Outcome, f, "outcome"),
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
        data = {k: v for k, v in self.__dict__.items() if k not in ("cycles", "downtime_summary")}
        data["outcome"] = str(self.outcome)
        data["cycles"] = [c.to_json() for c in self.cycles]
        summary = self.downtime_summary
        data["downtime_summary"] = summary.to_json() if summary is not None else None
        return data

    @classmethod
    def from_json(cls, f: Fields) -> ScenarioResult:
        summary = f.optional_obj("downtime_summary")
        return cls(
            name=f.text("name"),
            expected=f.text("expected", "migrates"),
            outcome=_enum(Outcome, f, "outcome"),
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
        )

    @classmethod
    def load(cls, path: Path) -> ScenarioResult:
        """A kept run's result.json."""
        return _load(path, cls.from_json)


@dataclass
class RunReport:
    """A whole run: the environment it ran in and every scenario's result. A nightly matrix
    also records its environment, when it ran, its iterations and its directory's stamp."""

    criu_version: str
    backend: str
    kernel: str = field(default_factory=platform.release)
    scenarios: list[ScenarioResult] = field(default_factory=list)
    environment: JsonObject | None = None
    started: float | None = None
    finished: float | None = None
    iterations: int | None = None
    stamp: str | None = None

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.scenarios)

    def backend_of(self, result: ScenarioResult) -> str:
        """A `run --report` file names its backend once, at the top; a matrix, per result."""
        return result.backend or self.backend

    def to_json(self) -> JsonObject:
        data: JsonObject = {
            "schema": SCHEMA_VERSION,
            "criu_version": self.criu_version,
            "kernel": self.kernel,
            "backend": self.backend,
            "scenarios": [s.to_json() for s in self.scenarios],
        }
        for key in ("environment", "started", "finished", "iterations", "stamp"):
            if (value := getattr(self, key)) is not None:
                data[key] = value
        return data

    @classmethod
    def from_json(cls, f: Fields) -> RunReport:
        schema = f.integer("schema", 1)
        if schema > SCHEMA_VERSION:
            raise FieldError("schema", f"version {schema} is newer than this criu-harness reads "
                             f"({SCHEMA_VERSION}): upgrade criu-harness")
        if "scenarios" not in f.data:
            raise FieldError("scenarios", "missing: not a results file")
        return cls(
            criu_version=f.text("criu_version", "unknown"),
            backend=f.text("backend", ""),
            kernel=f.text("kernel", ""),
            scenarios=f.items("scenarios", ScenarioResult.from_json),
            environment=f.raw("environment") if "environment" in f.data else None,
            started=f.optional_number("started"),
            finished=f.optional_number("finished"),
            iterations=f.optional_integer("iterations"),
            stamp=f.optional_text("stamp"),
        )

    @classmethod
    def load(cls, path: Path) -> RunReport:
        """A results.json, or the directory holding one; anything else is a usage error."""
        file = path / "results.json" if path.is_dir() else path
        return _load(file, cls.from_json)

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path


T = TypeVar("T")


def _load(file: Path, read: Callable[[Fields], T]) -> T:
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise UsageError(f"{file}: no such results file") from None
    except IsADirectoryError:
        raise UsageError(f"{file}: a directory, not a results file") from None
    except OSError as exc:
        raise UsageError(f"{file}: cannot read: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{file}: not a results file: bad JSON ({exc})") from None
    try:
        return read(Fields(data))
    except FieldError as exc:
        raise UsageError(f"{file}: {exc}") from None
