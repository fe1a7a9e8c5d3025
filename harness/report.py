"""The run's results for people (a table) and for programs (results.json)."""

from __future__ import annotations

from pathlib import Path

from harness.criu.log import message
from harness.result import RunReport, ScenarioResult
from harness.rundir import private_dir

RESULTS = "results.json"


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

