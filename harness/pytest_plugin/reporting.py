"""What a test's report shows of its migration: sections and JUnit properties."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any

import pytest

from harness.pytest_plugin.settings import CALL_REPORT, SETTINGS, result_of
from harness.result import ScenarioResult

# --- reports ------------------------------------------------------------------------------------


def _logs(result: ScenarioResult) -> list[str]:
    """Each CRIU call's log, named by action and role (the images directory is the role's)."""
    return [
        f"{call.action} of {call.log_path.parent.name}: {call.log_path}"
        for cycle in result.cycles
        for call in cycle.calls
    ]


def record_properties(properties: list[tuple[str, object]], result: ScenarioResult) -> None:
    """The result as JUnit properties (junitxml writes an item's user_properties)."""
    props: dict[str, object] = {
        "criu_outcome": str(result.outcome),
        "criu_backend": result.backend,
        "criu_plan": result.plan,
        "criu_messages_lost": result.messages_lost,
        "criu_client_errors": result.client_errors,
        "criu_downtime_ms": "" if result.downtime_ms is None else result.downtime_ms,
    }
    if result.criu_error:
        props["criu_error"] = result.criu_error
    if not result.ok:
        props["criu_reason"] = result.reason
        props["criu_logs"] = "; ".join(_logs(result))
        props["criu_artifacts"] = result.artifacts
    properties.extend(props.items())


def _details(result: ScenarioResult, keep: str) -> str:
    """What a failing test's report says about its migration."""
    lines = [
        f"outcome:  {result.outcome} (expected: {result.expected}); backend {result.backend}, "
        f"plan {result.plan}, {len(result.cycles)} cycle(s), {result.duration_s:.2f} s",
        f"reason:   {result.reason or '-'}",
        f"criu:     {result.criu_error or '-'}",
    ]
    if result.sent:
        lines.append(
            f"stats:    sent {result.sent}, answered {result.answered}, "
            f"lost {result.messages_lost}, duplicates {result.duplicates}, "
            f"timeouts {result.timeouts}, client errors {result.client_errors}, downtime "
            + (f"{result.downtime_ms:.1f} ms" if result.downtime_ms is not None else "-")
        )
    else:
        # Progress seen in a log by a pattern: nothing to count messages with.
        lines.append("stats:    no echo event log, so no message accounting")
    for cycle in result.cycles:
        phases = ", ".join(
            f"{p.step} {p.role} {p.duration_ms:.0f} ms"
            for p in cycle.phases
        )
        lines.append(f"cycle {cycle.cycle}: {cycle.outcome}: {phases}")
        for role, stats in sorted(cycle.stats.items()):
            lines.append(f"  stats of {role}: {_flat(stats.to_json())}")
    logs = _logs(result)
    if logs:
        lines.append("criu logs:")
        lines.extend(f"  {log}" for log in logs)
    if keep == "never":
        lines.append("artifacts: removed (--keep-artifacts=never)")
    elif result.artifacts:
        lines.append(f"artifacts: {result.artifacts}")
        for name in sorted(Path(result.artifacts).glob("*.stderr")):
            tail = _tail(name)
            if tail:
                lines.append(f"  {name.name}: {tail}")
    return "\n".join(lines)


def _flat(stats: Mapping[str, Any], prefix: str = "") -> str:
    """Nested statistics as ``key=value`` pairs, leaving out what CRIU did not report."""
    parts = []
    for key, value in stats.items():
        if isinstance(value, Mapping):
            inner = _flat(value, f"{prefix}{key}.")
            if inner:
                parts.append(inner)
        elif value is not None:
            parts.append(f"{prefix}{key}={value}")
    return ", ".join(parts)


def _tail(path: Path, count: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-count:])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when != "call":
        return
    item.stash[CALL_REPORT] = report
    result = result_of(item)
    if report.failed and result is not None:
        keep = item.config.stash[SETTINGS].keep
        report.sections.append(("criu migration", _details(result, keep)))
