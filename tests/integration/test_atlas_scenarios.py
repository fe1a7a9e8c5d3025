"""A sample of the atlas's scenarios on real CRIU (the whole atlas runs in the nightly job):
one of each kind of expectation, each as its scenario file says, through the cli backend."""

from __future__ import annotations

import pytest

from harness import scenario
from harness.criu import get_backend
from harness.result import Outcome
from harness.runner import ScenarioRun

pytestmark = pytest.mark.criu


def test_a_dump_refusal_and_the_pair_lives_on() -> None:
    s = scenario.find("unix-seqpacket")
    result = ScenarioRun(s, get_backend("cli")).run()
    assert result.outcome is Outcome.XFAILED, result.reason
    assert result.mechanism == "unix-seqpacket" and result.criu_version
    assert result.criu_error and "Can't dump half of stream unix connection" in result.criu_error
    assert result.resumed_after_failure is True


def test_breaks_migrates_but_the_ipc_does_not_come_back() -> None:
    result = ScenarioRun(scenario.find("pipe-two-trees"), get_backend("cli")).run()
    assert result.outcome is Outcome.XFAILED, result.reason
    assert result.criu_error is None  # CRIU did not complain
    assert "Broken pipe" in result.reason and result.client_errors > 0


def test_a_migration_that_may_repeat_one_message() -> None:
    result = ScenarioRun(scenario.find("fifo-two-trees"), get_backend("cli")).run()
    assert result.outcome is Outcome.PASSED, result.reason
    assert result.messages_lost == 0 and result.duplicates <= 1


def test_the_expectation_follows_the_criu_version() -> None:
    s = scenario.find("inet-tcp")
    backend = get_backend("cli")
    result = ScenarioRun(s, backend).run()
    assert result.ok, result.reason
    assert result.expected == s.expectation(s.plan, backend.criu.version()).outcome
