"""The overlapped plan on real CRIU: both dumps at once, both restores at once, the server
resumed before the client, nothing lost; a failed dump among overlapped ones rolls back."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness import scenario
from harness.criu import CriuOptions, get_backend
from harness.cycle import Cycles
from harness.result import Phase, Step
from harness.runner import ScenarioRun

pytestmark = pytest.mark.criu


def _span(phases: list[Phase], step: Step, role: str) -> tuple[float, float]:
    [phase] = [p for p in phases if p.step is step and p.role == role]
    return phase.started, phase.finished


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@pytest.mark.parametrize("isolation", ["none", "ns"])
def test_overlapped_plan_migrates_losslessly(backend_name: str, isolation: str) -> None:
    result = ScenarioRun(scenario.find("dgram-echo"), get_backend(backend_name),
                         plan="server-first-overlapped", iterations=2,
                         isolation=isolation).run()
    assert result.outcome == "passed", result.reason
    assert result.plan == "server-first-overlapped"
    assert result.messages_lost == 0 and result.client_errors == 0
    for cycle in result.cycles:
        phases = cycle.phases
        dumps = [_span(phases, Step.DUMP, r) for r in ("server", "client")]
        restores = [_span(phases, Step.RESTORE, r) for r in ("server", "client")]
        assert _overlap(*dumps) and _overlap(*restores)
        # Every dump ends before any restore starts; the server runs again before the client.
        assert max(d[1] for d in dumps) <= min(r[0] for r in restores)
        resumed = {p.role: p.started for p in phases if p.step is Step.RESUME}
        assert resumed["server"] < resumed["client"]
        assert max(r[1] for r in restores) <= resumed["server"]


def test_failed_overlapped_dumps_leave_the_pair_running() -> None:
    # Neither half of stream-echo's connection can be dumped: both dumps, run at once, fail
    # by the signature, nothing was dumped to roll back, and the thawed pair goes on.
    stream = scenario.find("stream-echo")
    result = ScenarioRun(stream, get_backend("cli"), plan="server-first-overlapped").run()
    assert result.outcome == "xfailed", result.reason
    assert result.resumed_after_failure is True
    [cycle] = result.cycles
    assert [c.action for c in cycle.calls] == ["dump", "dump"]
    assert all(c.error for c in cycle.calls)
    assert not [p for p in cycle.phases if p.step is Step.ROLLBACK]


def test_one_failed_dump_among_overlapped_ones_rolls_the_other_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only the client's dump is made to fail (CRIU's fault 3, dump pages); the server's, at
    # the same time, succeeds and is restored again: the pair goes on.
    options = Cycles._options

    def client_dump_fails(self: Cycles, role: str, action: str) -> CriuOptions:
        opts = options(self, role, action)
        return replace(opts, fault=3) if (role, action) == ("client", "dump") else opts

    monkeypatch.setattr(Cycles, "_options", client_dump_fails)
    dgram = scenario.find("dgram-echo")
    fails = scenario.Expectation(outcome="fails", action="dump",
                                 signature="fault: Dump VMA pages failure")
    result = ScenarioRun(replace(dgram, expect=fails, plan_expect={}), get_backend("cli"),
                         plan="server-first-overlapped").run()
    assert result.outcome == "xfailed", result.reason
    assert result.resumed_after_failure is True and result.messages_lost == 0
    [cycle] = result.cycles
    rollback = [(p.role, p.ok) for p in cycle.phases if p.step is Step.ROLLBACK]
    assert rollback == [("server", True)]
