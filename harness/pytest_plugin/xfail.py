"""Expected CRIU failures, all of them here: the ``criu_xfail`` marker, which a scenario file
that expects a failure also carries once collected.

Like pytest's own xfail, but strict and by CRIU's log: a test is reported xfailed when its
migration failed at the marker's action with a log line containing its signature and the
workload went on; a migration that succeeds fails it as ``[XPASS(strict)]``; another failure
fails it. ``--runxfail`` reports an expected failure as a plain pass.

PYTEST_DONT_REWRITE: the plugin package imports this module before pytest reads its
``pytest_plugins`` (too late to rewrite, and it has no asserts to rewrite).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from harness.criu.log import message
from harness.errors import UsageError
from harness.pytest_plugin.settings import result_of
from harness.result import Outcome, ScenarioResult
from harness.scenario import Expectation

EXPECTED = pytest.StashKey["Expectation | None"]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "criu_xfail(signature, action='dump'): the test's migration must fail at action with "
        "signature in CRIU's log (strict: a migration that succeeds fails the test)",
    )


def expect(item: pytest.Item, expectation: Expectation) -> None:
    """Mark item with the CRIU failure expectation names, if it names one (a scenario file):
    CRIU failing ("fails"), or migrating an IPC that does not come back ("breaks")."""
    if expectation.outcome in ("fails", "breaks"):
        item.add_marker(pytest.mark.criu_xfail(signature=expectation.signature,
                                               action=expectation.action or "dump"))
        item.stash[EXPECTED] = expectation


def expected_failure(item: pytest.Item) -> Expectation | None:
    """The CRIU failure item expects, by its criu_xfail marker; None when it expects none."""
    if EXPECTED not in item.stash:
        item.stash[EXPECTED] = _from_marker(item)
    return item.stash[EXPECTED]


def _from_marker(item: pytest.Item) -> Expectation | None:
    marker = item.get_closest_marker("criu_xfail")
    if marker is None:
        return None
    signature = marker.kwargs.get("signature", marker.args[0] if marker.args else None)
    action = marker.kwargs.get("action", "dump")
    if not isinstance(signature, str) or not signature:
        raise UsageError("criu_xfail needs signature='...' (a text of CRIU's error line)")
    if action not in ("dump", "restore"):
        raise UsageError(f"criu_xfail: action must be 'dump' or 'restore', not {action!r}")
    return Expectation(outcome="fails", action=action, signature=signature)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    expected_failure(item)  # a malformed marker is an error of the test's setup


def check(result: ScenarioResult) -> None:
    """Fail the test whose migration did not fail as it expects (it ran, and returned)."""
    if result.outcome is Outcome.XPASSED:
        pytest.fail(f"[XPASS(strict)] {result.reason}", pytrace=False)
    if result.outcome is not Outcome.XFAILED:
        pytest.fail(f"migration {result.outcome}: {result.reason}", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    expected = item.stash.get(EXPECTED, None)
    if report.when != "call" or expected is None or not report.passed:
        return
    if item.config.option.runxfail:
        return  # as pytest's --runxfail does: reported as it ended, a pass
    result = result_of(item)
    if result is None:
        report.outcome = "failed"
        report.longrepr = "criu_xfail: the test ran no migration (call migration.run())"
    elif result.outcome is Outcome.XFAILED:
        # Reported like pytest's own xfail: the failure was expected and it happened.
        report.outcome = "skipped"
        if expected.outcome == "breaks":  # CRIU did its part; the IPC did not come back
            report.wasxfail = result.reason
        else:
            why = message(result.criu_error) if result.criu_error else "-"
            report.wasxfail = f"criu {expected.action} failed as expected: {why}"
