"""A whole run's results: for programs (results.json, read back by every reader through
``RunReport.load``) and for people (a line per scenario)."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path

from harness.criu.log import message
from harness.fields import FieldError, Fields, JsonObject, load_json
from harness.result import ScenarioResult
from harness.rundir import private_dir

__all__ = ["RESULTS", "SCHEMA_VERSION", "RunReport", "header", "line", "write"]

RESULTS = "results.json"
# 1: the first round's files (no "schema" field); 2: the same fields, typed and versioned.
SCHEMA_VERSION = 2


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
        return load_json(file, cls.from_json)

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path


def _ms(value: float | None) -> str:
    return f"{value:.1f} ms" if value is not None else "-"


def line(result: ScenarioResult, width: int = 16) -> str:
    """One scenario on one line: outcome, lost, errors, downtime, CRIU's signature."""
    variant = result.variant.removeprefix("server-first/")  # the default plan goes unsaid
    name = result.name if variant in ("", "server-first") else f"{result.name}[{variant}]"
    parts = [
        f"{name:<{width}}",
        f"{result.outcome:<8}",
        f"lost {result.messages_lost}",
        f"dup {result.duplicates}",
        f"errors {result.client_errors}",
        f"downtime {_ms(result.downtime_ms)}",
    ]
    if len(result.cycles) > 1:
        parts.append(f"cycles {len(result.cycles)}")
        if (d := result.downtime_summary) is not None:
            parts.append(
                f"downtime min/median/p95/max {d.min_ms:.1f}/{d.median_ms:.1f}/"
                f"{d.p95_ms:.1f}/{d.max_ms:.1f} ms"
            )
    parts.append(f"criu: {message(result.criu_error) if result.criu_error else '-'}")
    if result.artifacts:
        parts.append(f"artifacts: {result.artifacts}")
    if result.bundle:
        parts.append(f"bundle: {result.bundle}")
    return "  ".join(parts)


def header(report: RunReport) -> str:
    return f"criu {report.criu_version} | kernel {report.kernel} | backend {report.backend}"


def write(report: RunReport, directory: Path) -> Path:
    private_dir(directory)  # its artifacts/ holds bundles of memory images
    return report.write(directory / RESULTS)

