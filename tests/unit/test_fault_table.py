"""harness.faults and the fault matrix's pure parts: the table against CRIU's own list of
codes, each case's scenario variant and expectation, the checks on a finished run, the
expected-failure rule for a CRIU killed by a signal, and the report's fault table."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from harness import faults, faulttable
from harness.difference import Difference
from harness.errors import CriuError, UsageError
from harness.faultrun import check
from harness.faults import CASES, Effect, FaultCase
from harness.fields import Fields
from harness.report import RunReport
from harness.result import CycleResult, InjectedFault, Outcome, ScenarioResult, Step
from harness.scenario import Expectation
from harness.verdict import expected_failure

HEADER = Path("/usr/local/src/criu-harness/criu-4.2.1/criu/include/fault-injection.h")


def criu_codes(text: str) -> dict[int, str]:
    """The codes of CRIU's enum faults: FI_NAME = N, or the next after the previous."""
    codes: dict[int, str] = {}
    last = -1
    for name, value in re.findall(r"^\s*(FI_[A-Z_]+)\s*(?:=\s*(\d+))?\s*,", text, re.MULTILINE):
        last = int(value) if value else last + 1
        if name not in ("FI_NONE", "FI_MAX"):
            codes[last] = name
    return codes


@pytest.mark.skipif(not HEADER.is_file(), reason=f"CRIU's source is not at {HEADER.parent}")
def test_every_code_of_criu_is_in_the_table_under_its_own_name() -> None:
    expected = criu_codes(HEADER.read_text())
    assert expected[1] == "FI_DUMP_EARLY" and expected[138] == "FI_PLUGIN_CUDA_FORCE_ENABLE"
    assert {c.code: c.name for c in CASES} == expected


def test_each_case_says_what_must_hold_and_has_what_it_needs() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))  # one result name per (scenario, code)
    for case in CASES:
        assert case.inject in ("dump", "restore", "both")
        assert case.observed
        if case.effect is Effect.MIGRATES:
            assert case.signature is None and case.killed_by is None
        else:
            assert case.signature, case
        assert case.scenario in case.id and str(case.code) in case.id


def test_a_fatal_code_on_a_scenario_is_a_variant_with_the_fault_in_its_action() -> None:
    [case] = [c for c in CASES if c.code == 1]
    base = case.load()
    variant = case.variant(base)
    assert variant.name == "dgram-echo.fault-1"
    assert variant.criu.dump["fault"] == 1 and "fault" not in variant.criu.restore
    assert variant.expect == Expectation("fails", "dump", "fault: CRIU sudden detach",
                                         killed_by="SIGKILL")
    assert variant.plan_expect == {} and variant.processes == base.processes
    assert "CRIU_FAULT=1 (FI_DUMP_EARLY)" in variant.description


def test_a_variant_keeps_the_scenarios_own_criu_options() -> None:
    [case] = [c for c in CASES if c.code == 136 and c.scenario == "stream-echo"]
    variant = case.variant(case.load())
    assert variant.criu.dump == {"ext_unix_sk": True, "fault": 136}
    assert variant.expect.killed_by == "SIGABRT"
    [both] = [c for c in CASES if c.code == 130]
    assert both.variant(both.load()).criu.common["fault"] == 130


def test_a_harmless_code_migrates_with_the_differences_it_causes_allowed() -> None:
    [case] = [c for c in CASES if c.code == 127]
    variant = case.variant(case.load())
    assert variant.expect.outcome == "migrates"
    assert variant.expect.allowed_differences == case.differences
    assert variant.criu.restore["fault"] == 127
    assert Difference("server", "maps r--p [anon]", "(none)", "24576").allowed_by(case.differences)


def test_the_expectation_in_words() -> None:
    [dump] = [c for c in CASES if c.code == 3]
    assert dump.expectation() == (
        "criu dump fails with 'fault: Dump VMA pages failure!'; rolled back: the workload "
        "goes on, nothing lost; nothing left after the run")
    [restore] = [c for c in CASES if c.code == 2]
    assert "images and logs kept, nothing restored left" in restore.expectation()
    assert "log shows 'fault: Restore root task failure!'" in restore.expectation()


def test_codes_are_selected_and_an_unknown_one_is_a_usage_error() -> None:
    assert [c.id for c in faults.select([4])] == ["dgram-echo.fault-4", "dgram-ghost.fault-4"]
    assert faults.select(None) == list(CASES)
    with pytest.raises(UsageError, match=r"unknown fault code\(s\) 7 \(known: 1, 2, 3"):
        faults.select([1, 7])


# --- checks on a finished run -----------------------------------------------------------------


def result(outcome: Outcome, **kw: object) -> ScenarioResult:
    return ScenarioResult(name="x", expected="fails", outcome=outcome,
                          **kw)  # type: ignore[arg-type]


def test_a_fault_that_left_no_trace_did_not_act(tmp_path: Path) -> None:
    case = FaultCase(129, "FI_NO_MEMFD", "dump", Effect.MIGRATES, "", trace="MemFD parasite")
    log = tmp_path / "images" / "server" / "dump.log"
    log.parent.mkdir(parents=True)
    log.write_text("(00.01) nothing of the kind\n")
    [problem] = check(case, result(Outcome.PASSED), tmp_path)
    assert problem == "the fault did not show: no 'MemFD parasite' in the dump.log of this run"
    log.write_text("(00.01) MemFD parasite doesn't work, goto legacy mmap\n")
    assert check(case, result(Outcome.PASSED), tmp_path) == []


def test_a_rollback_that_lost_messages_fails_the_case(tmp_path: Path) -> None:
    case = FaultCase(3, "FI_DUMP_PAGES", "dump", Effect.DUMP_FAILS, "", signature="fault")
    [problem] = check(case, result(Outcome.XFAILED, messages_lost=2), tmp_path)
    assert problem == "after the rollback: 2 lost, 0 client error(s) (expected none)"


def test_a_difference_the_fault_should_cause_must_show(tmp_path: Path) -> None:
    case = FaultCase(127, "FI_VDSO_TRAMPOLINES", "restore", Effect.MIGRATES, "",
                     differences=("maps r-xp [[]anon]: (none) -> *",))
    plain = result(Outcome.PASSED, cycles=[CycleResult(1, Outcome.PASSED)])
    [problem] = check(case, plain, tmp_path)
    assert problem.startswith("no visible difference 'maps r-xp")
    plain.cycles[0].differences = [Difference("server", "maps r-xp [anon]", "(none)", "8192")]
    assert check(case, plain, tmp_path) == []


def test_a_failed_restore_must_keep_its_evidence(tmp_path: Path) -> None:
    from harness.criu.backend import CriuCall

    case = FaultCase(2, "FI_RESTORE_ROOT_ONLY", "restore", Effect.RESTORE_FAILS, "",
                     signature="killed by signal 9")
    images = tmp_path / "images" / "server"
    images.mkdir(parents=True)
    call = CriuCall("restore", "cli", None, {}, {}, images / "restore.log", 0.0, error="boom")
    res = result(Outcome.XFAILED, cycles=[CycleResult(1, Outcome.XFAILED, calls=[call])])
    problems = check(case, res, tmp_path)
    assert problems[0].startswith("images of the failed restore missing in ")
    assert problems[0].endswith("pstree.img, inventory.img, core-*.img, pages-*.img")
    assert f"no restore log {images / 'restore.log'}" in problems
    for name in ("pstree.img", "inventory.img", "core-1.img", "pages-1.img"):
        (images / name).write_bytes(b"x")
    (images / "restore.log").write_text("Error (criu/cr-restore.c:1269): 7 killed by signal 9\n")
    (tmp_path / "criu-calls.json").write_text("[]")
    (tmp_path / "signatures.txt").write_text("")
    assert check(case, res, tmp_path) == []


def test_a_process_of_the_run_still_there_is_a_leftover(tmp_path: Path) -> None:
    import subprocess

    case = FaultCase(138, "FI_PLUGIN_CUDA_FORCE_ENABLE", "dump", Effect.MIGRATES, "")
    proc = subprocess.Popen(["sleep", "30"], cwd=tmp_path)
    try:
        [problem] = check(case, result(Outcome.PASSED), tmp_path)
        assert problem.startswith(f"left after the run: pid {proc.pid} (")
    finally:
        proc.kill()
        proc.wait()
    assert check(case, result(Outcome.PASSED), tmp_path) == []


# --- a CRIU killed by a signal, expected or not ------------------------------------------------


def killed(tmp_path: Path, sig: int, signature: str) -> CriuError:
    log = tmp_path / "dump.log"
    log.write_text("(00.01) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE\n")
    return CriuError(action="dump", pid=1, log_path=log, signature=signature, signal=sig)


def test_a_killed_criu_is_the_expected_failure_only_when_the_signal_is_named(
    tmp_path: Path,
) -> None:
    err = killed(tmp_path, signal.SIGKILL, "killed by SIGKILL after: fault: CRIU sudden detach")
    expect = Expectation("fails", "dump", "fault: CRIU sudden detach")
    assert expected_failure(expect, err, Step.DUMP) is None
    named = Expectation("fails", "dump", "fault: CRIU sudden detach", killed_by="SIGKILL")
    assert expected_failure(named, err, Step.DUMP) == err.signature
    other = Expectation("fails", "dump", "fault: CRIU sudden detach", killed_by="SIGABRT")
    assert expected_failure(other, err, Step.DUMP) is None
    # A timeout is a SIGKILL too, but not the fault's.
    timeout = killed(tmp_path, signal.SIGKILL, "timed out after 2 s")
    assert expected_failure(named, timeout, Step.DUMP) is None


def test_a_criu_that_exits_is_not_the_failure_of_an_expected_kill(tmp_path: Path) -> None:
    log = tmp_path / "dump.log"
    log.write_text("(00.01) Error (criu/mem.c:712): fault: Dump VMA pages failure!\n")
    err = CriuError(action="dump", pid=1, log_path=log, signature="x", returncode=1)
    plain = Expectation("fails", "dump", "Dump VMA pages failure")
    assert expected_failure(plain, err, Step.DUMP) is not None
    kill = Expectation("fails", "dump", "Dump VMA pages failure", killed_by="SIGKILL")
    assert expected_failure(kill, err, Step.DUMP) is None


# --- results and the report -------------------------------------------------------------------


def test_the_fault_of_a_result_is_written_and_read_back() -> None:
    fault = InjectedFault(3, "FI_DUMP_PAGES", "dump", "criu dump fails with ...")
    res = ScenarioResult(name="dgram-echo.fault-3", expected="fails", outcome=Outcome.XFAILED,
                         backend="rpc", fault=fault)
    back = ScenarioResult.from_json(Fields(res.to_json()))
    assert back.fault == fault
    assert "fault" not in ScenarioResult(name="x", expected="migrates").to_json()


def test_the_fault_table_shows_each_code_per_backend_met_or_not() -> None:
    fault = InjectedFault(3, "FI_DUMP_PAGES", "dump", "criu dump fails with 'x'")
    run = RunReport(criu_version="4.2.1", backend="matrix", scenarios=[
        ScenarioResult(name="dgram-echo.fault-3", expected="fails", outcome=Outcome.XFAILED,
                       backend="rpc", fault=fault),
        ScenarioResult(name="dgram-echo.fault-3", expected="fails", outcome=Outcome.FAILED,
                       backend="cli", fault=fault, reason="lost <2>"),
        ScenarioResult(name="dgram-echo", expected="migrates", outcome=Outcome.PASSED,
                       backend="rpc"),
    ])
    page = faulttable.html(run)
    assert page.startswith("<p>1 of 2 expectation(s) met.")
    assert "<th>rpc</th><th>cli</th>" in page
    assert '<td class="good" title="">met (xfailed)</td>' in page
    assert '<td class="bad" title="lost &lt;2&gt;">NOT met (failed)</td>' in page
    assert "<td>FI_DUMP_PAGES</td><td>dump</td><td>dgram-echo</td>" in page
    assert faulttable.html(RunReport(criu_version="4.2.1", backend="rpc")) == ""


def test_the_docs_show_the_table_as_it_is() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "faults.md").read_text()
    assert faults.markdown() in doc
