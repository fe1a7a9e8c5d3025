"""--safe-handover on real CRIU: a restore made to fail (CRIU's fault 6, FI_POST_RESTORE: the
copy is fully restored, its socket names taken, then CRIU kills it and fails) leaves the
source to resume: 0 messages lost, nothing of the copy left. Without the hand-over the same
failure loses the workload; without parking the source's socket names, its peers lose it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from harness import handover, scenario
from harness.criu import get_backend
from harness.errors import UsageError
from harness.result import Step
from harness.runner import ScenarioRun

pytestmark = pytest.mark.criu


def failing_restore() -> scenario.Scenario:
    """dgram-echo whose restores fail (after the copy bound its sockets), as it expects."""
    dgram = scenario.find("dgram-echo")
    criu = replace(dgram.criu, restore={"fault": 6})
    fails = scenario.Expectation(outcome="fails", action="restore", signature="Restoring FAILED")
    return replace(dgram, criu=criu, expect=fails, plan_expect={})


def leftovers(run_dir: str) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"])
            if run_dir in " ".join(p.info["cmdline"] or []) and p.status() != "zombie"]


@pytest.mark.parametrize("plan", ["server-first", "server-first-overlapped"])
def test_a_failed_restore_hands_back_to_the_source(backend_name: str, plan: str) -> None:
    run = ScenarioRun(failing_restore(), get_backend(backend_name), plan=plan,
                      safe_handover=True, keep="always")
    result = run.run()
    try:
        assert result.isolation == "ns"  # implied
        assert result.outcome == "xfailed", result.reason
        assert result.resumed_after_failure is True
        assert result.messages_lost == 0 and result.client_errors == 0
        [cycle] = result.cycles
        dumps = [c for c in cycle.calls if c.action == "dump"]
        assert all(c.criu_options["leave_stopped"] for c in dumps)
        rollback = [(p.role, p.ok) for p in cycle.phases if p.step is Step.ROLLBACK]
        assert rollback == [("server", True), ("client", True)]
        assert leftovers(result.artifacts) == []
        # The parked links went back where they were: nothing parked is left behind.
        assert not list(Path(result.artifacts).rglob(f"*{handover.PARKED_SUFFIX}"))
    finally:
        assert run.run_dir is not None
        run.run_dir.remove()


def test_without_the_hand_over_the_same_failure_loses_the_workload() -> None:
    result = ScenarioRun(failing_restore(), get_backend("cli"), isolation="ns").run()
    # CRIU failed as expected, and nothing can go on: the images are all there was.
    assert result.outcome == "xfailed"
    assert result.reason == "failed as expected at restore; the workload is lost"
    assert result.resumed_after_failure is not True


def test_the_sources_socket_names_must_be_parked(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the parked links the resumed server is bound to a name the failed copy took
    # away: the client's requests go nowhere.
    monkeypatch.setattr(handover, "park", lambda pids: handover.Parked())
    result = ScenarioRun(failing_restore(), get_backend("cli"), safe_handover=True).run()
    assert result.outcome == "failed"
    assert "after the expected failure" in result.reason


def test_a_safe_hand_over_that_succeeds_kills_the_sources(backend_name: str) -> None:
    result = ScenarioRun(scenario.find("dgram-echo"), get_backend(backend_name),
                         safe_handover=True, iterations=2, transport="page-server").run()
    assert result.outcome == "passed", result.reason
    assert result.messages_lost == 0
    for cycle in result.cycles:
        reaped = [p.role for p in cycle.phases if p.step is Step.REAP]
        assert sorted(reaped) == ["client", "server"]


def test_safe_hand_over_needs_ns() -> None:
    with pytest.raises(UsageError, match="--safe-handover needs --isolation ns"):
        ScenarioRun(scenario.find("dgram-echo"), get_backend("cli"), isolation="none",
                    safe_handover=True)


def test_a_lazy_dumps_source_cannot_be_kept() -> None:
    # Tried: a restore failing after its tasks were made (fault 6) lets the lazy-pages daemon
    # finish, the dump ends successfully, and CRIU kills the source: nothing to hand back.
    with pytest.raises(UsageError, match="cannot keep a lazy dump's source"):
        ScenarioRun(failing_restore(), get_backend("rpc"), transport="lazy", safe_handover=True)
