"""harness.compare: verdicts between two runs, and the `compare` command's lines and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.compare import compare, normalized_signature
from harness.fields import Fields
from harness.report import RunReport

SIG = (
    "Error (criu/sk-unix.c:881): unix: Can't dump half of stream unix connection. "
    "name: /tmp/criu-harness-stream-echo-{rand}/server.sock; "
    "peer name: /tmp/criu-harness-stream-echo-{rand}/client.sock"
)


def entry(
    name: str = "dgram-echo",
    outcome: str = "passed",
    downtimes: tuple[float, ...] = (200.0,),
    criu_error: str | None = None,
    backend: str = "rpc",
    plan: str = "server-first",
    pid: int = 4242,
) -> dict[str, Any]:
    return {
        "name": name,
        "expected": "fails" if outcome in ("xfailed", "xpassed") else "migrates",
        "outcome": outcome,
        "backend": backend,
        "plan": plan,
        "criu_error": criu_error,
        "reason": f"why {outcome}",
        "downtime_ms": max(downtimes) if downtimes else None,
        "cycles": [
            {"cycle": i + 1, "outcome": outcome, "downtime_ms": d,
             "calls": [{"action": "dump", "pid": pid, "restored_pid": None}]}
            for i, d in enumerate(downtimes)
        ],
    }


def run(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"criu_version": "4.2.1", "kernel": "6.18", "backend": "matrix", "scenarios": list(entries)}


def report(data: dict[str, Any]) -> RunReport:
    return RunReport.from_json(Fields(data))


def write(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "results.json").write_text(json.dumps(data))
    return directory


def cli(tmp_path: Path, old: dict[str, Any], new: dict[str, Any], *extra: str) -> int:
    return main(["compare", str(write(tmp_path, "old", old)), str(write(tmp_path, "new", new)), *extra])


def test_passed_to_failed_is_a_new_failure_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli(tmp_path, run(entry()), run(entry(outcome="failed")))
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    failures = [line for line in out if line.startswith("new failure:")]
    assert failures == ["new failure: dgram-echo [rpc, server-first]: passed -> failed: why failed"]


def test_xfailed_to_xpassed_says_the_expected_failure_now_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = run(entry("stream-echo", "xfailed", (), SIG.format(rand="aaaa1111")))
    new = run(entry("stream-echo", "xpassed", (150.0,)))
    assert cli(tmp_path, old, new) == 1
    out = capsys.readouterr().out
    assert "expected failure now passes: stream-echo [rpc, server-first]: xfailed -> xpassed" in out
    assert "CRIU learned something new, update the scenario" in out


def test_same_error_in_another_run_directory_is_unchanged() -> None:
    old = run(entry("stream-echo", "xfailed", (), SIG.format(rand="aaaa1111"), pid=100))
    new = run(entry("stream-echo", "xfailed", (), SIG.format(rand="bbbb2222").replace("881", "900"),
                    pid=200))
    [verdict] = compare(report(old), report(new)).verdicts
    assert verdict.kind == "unchanged"
    assert normalized_signature(report(new).scenarios[0]) == (
        "unix: Can't dump half of stream unix connection. name: <run_dir>/server.sock; "
        "peer name: <run_dir>/client.sock"
    )


def test_pids_do_not_count_as_a_change() -> None:
    old = run(entry(outcome="failed", criu_error="Error (criu/cr-restore.c:1): Can't fork for 100: File exists", pid=100))
    new = run(entry(outcome="failed", criu_error="Error (criu/cr-restore.c:2): Can't fork for 200: File exists", pid=200))
    [verdict] = compare(report(old), report(new)).verdicts
    assert verdict.kind == "still failing"
    assert not verdict.regression


def test_signature_changed_is_a_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = run(entry("stream-echo", "xfailed", (), SIG.format(rand="aaaa1111")))
    new = run(entry("stream-echo", "xfailed", (),
                    "Error (criu/sk-unix.c:300): unix: External socket is used. Consider using --ext-unix-sk option."))
    assert cli(tmp_path, old, new) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("signature changed: stream-echo [rpc, server-first]: ")
    assert "External socket is used" in lines[0] and "<run_dir>" in lines[0]


@pytest.mark.parametrize(
    ("after", "threshold", "kind", "code"),
    [
        ((250.0, 260.0, 900.0), "0.2", "downtime regression", 1),  # median 260: +30%
        ((230.0, 235.0, 900.0), "0.2", "unchanged", 0),  # median 235: +17.5%; the outlier is not the median
        ((250.0, 260.0, 900.0), "0.5", "unchanged", 0),
    ],
)
def test_downtime_regression_is_the_median_beyond_the_threshold(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    after: tuple[float, ...],
    threshold: str,
    kind: str,
    code: int,
) -> None:
    old = run(entry(downtimes=(190.0, 200.0, 210.0)))
    assert cli(tmp_path, old, run(entry(downtimes=after)), "--threshold", threshold) == code
    out = capsys.readouterr().out
    assert out.startswith(f"{kind}: dgram-echo [rpc, server-first]: passed, median downtime 200.0 ms -> ")


def test_fixed_is_not_a_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = run(entry(outcome="error", downtimes=()), entry(backend="cli"))
    new = run(entry(), entry(backend="cli"))
    assert cli(tmp_path, old, new) == 0
    out = capsys.readouterr().out
    assert "fixed: dgram-echo [rpc, server-first]: error -> passed" in out
    assert "unchanged: dgram-echo [cli, server-first]" in out


def test_keys_include_backend_and_plan() -> None:
    old = run(entry(backend="rpc"), entry(plan="no-freeze"))
    new = run(entry(backend="cli"), entry(plan="no-freeze", outcome="failed"))
    kinds = {(v.key, v.kind) for v in compare(report(old), report(new)).verdicts}
    assert kinds == {
        (("dgram-echo", "cli", "server-first"), "new scenario"),
        (("dgram-echo", "rpc", "server-first"), "removed scenario"),
        (("dgram-echo", "rpc", "no-freeze"), "new failure"),
    }


def test_a_run_report_names_its_backend_once() -> None:
    """`run --report` files carry the backend at the top; matrix files per entry."""
    old = {"backend": "rpc", "scenarios": [{"name": "dgram-echo", "outcome": "passed", "plan": "server-first"}]}
    [verdict] = compare(report(old), report(run(entry()))).verdicts
    assert verdict.kind == "unchanged"


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("{", "bad JSON"),
        ('{"scenarios": 3}', "scenarios: must be a list, not an integer"),
        ("[]", "file: must be an object"),
        ('{"scenarios": [{"name": 1}]}', "scenarios[0].name: must be a string, not an integer"),
        ('{"scenarios": [{"name": "x", "outcome": "passed", "cycles": "abc"}]}',
         "scenarios[0].cycles: must be a list, not a string"),
        ('{"scenarios": [{"name": "x", "outcome": "passed", "downtime_ms": [1]}]}',
         "scenarios[0].downtime_ms: must be a number or null, not a list"),
        ('{"scenarios": [{"name": "x", "outcome": "won"}]}', "scenarios[0].outcome: must be one of"),
        ('{"scenarios": [{"name": "x", "outcome": "passed", "cycles": [{"cycle": 1, '
         '"outcome": "passed", "timeline": [[1, "a"]]}]}]}',
         "scenarios[0].cycles[0].timeline[0][1]: must be a finite number"),
        ('{"schema": 99, "scenarios": []}', "schema: version 99 is newer"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_field_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, field: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    good = write(tmp_path, "good", run(entry()))
    assert main(["compare", str(bad), str(good)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and field in err, err


def test_a_results_file_reads_back_as_it_was_written() -> None:
    data = run(entry(downtimes=(100.0, 120.0)), entry("stream-echo", "xfailed", (), SIG))
    first = report(data)
    again = RunReport.from_json(Fields(json.loads(json.dumps(first.to_json()))))
    assert again == first
    assert again.to_json()["schema"] == 2


def test_a_missing_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(tmp_path / "nothing"), str(tmp_path / "nothing")]) == 2
    assert "no such results file" in capsys.readouterr().err
