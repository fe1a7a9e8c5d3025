"""Verdicts: did CRIU fail the way the scenario expects, are the losses within its limits, and
what does the whole run come to."""

from __future__ import annotations

import signal

from harness.criu.log import error_lines
from harness.errors import CriuError
from harness.process import Workload
from harness.progress import Progress
from harness.result import DowntimeSummary, Outcome, ScenarioResult, Step
from harness.scenario import Expectation
from harness.verification import Accounting

__all__ = ["conclude", "expected_failure", "over_limits"]


def expected_failure(expect: Expectation, err: CriuError, step: Step | None) -> str | None:
    """The log line showing CRIU failed as the scenario expects, or None.

    Matched in the log itself, not guessed from an exit code; a CRIU killed by a signal counts
    only when the expectation names that signal (``killed_by``), and then its signature
    (``killed by SIGKILL after: <its last log line>``) may hold the expected text too."""
    if expect.outcome != "fails" or step != expect.action or not expect.signature:
        return None
    if err.signal is not None and _signal_name(err.signal) != expect.killed_by:
        return None
    if err.signal is None and expect.killed_by is not None:
        return None
    lines = []
    if err.log_path is not None and err.log_path.exists():
        with err.log_path.open(errors="replace") as log:
            lines = error_lines(log)
    if err.signal is not None and err.signature:
        lines.append(err.signature)
    return next((line for line in lines if expect.signature in line), None)


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def over_limits(
    expect: Expectation, lost: int, errors: int, duplicates: int, cycles: int = 1
) -> list[str]:
    """What is over the scenario's limits; the limits are per migration, so a whole run of
    several cycles may lose that much in each."""
    problems = []
    max_lost, max_errors = expect.max_lost * cycles, expect.max_client_errors * cycles
    if lost > max_lost:
        problems.append(f"{lost} message(s) lost (at most {max_lost} expected)")
    if errors > max_errors:
        problems.append(f"{errors} client error(s) (at most {max_errors} expected)")
    if duplicates > expect.max_duplicates * cycles:
        problems.append(f"{duplicates} duplicate repl(ies)")
    return problems


def conclude(
    result: ScenarioResult,
    expect: Expectation,
    progress: Progress,
    workloads: dict[str, Workload],
    resumed: bool | None,
    asked: list[str] | None = None,
) -> None:
    """The scenario's outcome from its cycles, the whole event log and who still runs; for a
    program that checks itself, ``asked`` holds what its answer said was wrong (see
    harness.selfcheck), and its having exited is no failure."""
    cycles = result.cycles
    last = cycles[-1]
    result.criu_error = last.criu_error
    downtimes = [c.downtime_ms for c in cycles if c.downtime_ms is not None]
    result.downtime_ms = max(downtimes) if downtimes else None
    result.downtime_summary = DowntimeSummary.of(cycles)
    events = progress.events()
    if events is not None:
        acc = Accounting.from_events(events)
        result.messages_lost, result.duplicates = acc.messages_lost, acc.duplicates
        result.out_of_order, result.timeouts = acc.out_of_order, acc.timeouts
        result.client_errors = acc.client_errors
        result.sent, result.answered = acc.sent, acc.answered
    if expect.outcome in ("fails", "breaks"):
        result.outcome, result.reason = last.outcome, last.reason
        result.resumed_after_failure = resumed
        return
    if last.outcome is not Outcome.PASSED:
        result.outcome, result.reason = Outcome.FAILED, last.reason
        return
    problems = over_limits(
        expect, result.messages_lost, result.client_errors, result.duplicates, len(cycles)
    )
    if asked is not None:
        problems += asked
    else:
        dead = [name for name, w in workloads.items() if not w.alive()]
        if dead:
            problems.append(f"not running at the end: {', '.join(dead)}")
    result.outcome = Outcome.FAILED if problems else Outcome.PASSED
    verified = f"{len(cycles)} migration(s) verified" if len(cycles) > 1 else "migrated and verified"
    result.reason = "; ".join(problems) or (
        f"{verified}; the program's own check passed" if asked is not None else verified
    )
