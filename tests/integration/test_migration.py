"""dgram-echo and stream-echo on real CRIU through both backends, an expected failure that
does not come, and the command line's default run with its report."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from harness import cli, scenario
from harness.criu import get_backend
from harness.runner import ScenarioRun

pytestmark = pytest.mark.criu


def test_dgram_echo_migrates_server_first(backend_name: str) -> None:
    result = ScenarioRun(scenario.find("dgram-echo"), get_backend(backend_name)).run()
    assert result.outcome == "passed", result.reason
    assert result.messages_lost == 0 and result.client_errors == 0 and result.duplicates == 0
    assert result.downtime_ms is not None and result.downtime_ms > 0
    assert result.artifacts == ""  # a passing run cleans up

    [cycle] = result.cycles
    # quiesce and inspect (the fingerprints) are steps of their own, between these.
    between = ("quiesce", "inspect")
    order = [(p.step, p.role) for p in cycle.phases if p.step not in between]
    assert order == [
        ("freeze", "server"), ("freeze", "client"),
        ("dump", "server"), ("reap", "server"), ("dump", "client"), ("reap", "client"),
        ("restore", "server"), ("resume", "server"), ("restore", "client"), ("resume", "client"),
    ]
    # The client answered round trips during the migration's window, before and after.
    starts = [p.started for p in cycle.phases]
    assert any(t < min(starts) for t, _ in cycle.timeline)
    assert any(t > max(starts) for t, _ in cycle.timeline)


def test_stream_echo_fails_by_signature_and_survives(backend_name: str) -> None:
    result = ScenarioRun(scenario.find("stream-echo"), get_backend(backend_name)).run()
    assert result.outcome == "xfailed", result.reason
    assert result.criu_error is not None
    assert "Can't dump half of stream unix connection" in result.criu_error
    assert result.resumed_after_failure is True
    [cycle] = result.cycles
    assert [c.action for c in cycle.calls] == ["dump"]
    assert cycle.calls[0].error


def test_a_successful_dump_of_an_expected_failure_is_xpassed(
    backend_name: str, tmp_path: Path
) -> None:
    # dgram-echo migrates: claiming that its dump fails must not pass silently.
    dgram = scenario.find("dgram-echo")
    fails = scenario.Expectation(outcome="fails", action="dump", signature="never printed")
    result = ScenarioRun(
        replace(dgram, expect=fails), get_backend(backend_name), bundle_into=tmp_path
    ).run()
    assert result.outcome == "xpassed" and not result.ok
    # The run directory stays where it ran (its images name files there); the report's copy
    # is a bundle.
    run = Path(result.artifacts)
    assert (run / "images").is_dir() and (run / "result.json").is_file()
    assert result.bundle == str(tmp_path / f"{run.name}.tar.gz")
    with tarfile.open(result.bundle) as tar:
        assert f"{run.name}/result.json" in tar.getnames()
    shutil.rmtree(run)


def test_cli_report(tmp_path: Path, backend_name: str, capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["run", "--backend", backend_name, "--report", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["backend"] == backend_name
    assert data["criu_version"] and data["kernel"] == os.uname().release
    by_name = {s["name"]: s for s in data["scenarios"]}
    dgram, stream = by_name["dgram-echo"], by_name["stream-echo"]
    assert (dgram["expected"], dgram["outcome"]) == ("migrates", "passed")
    assert dgram["messages_lost"] == 0 and dgram["client_errors"] == 0
    assert isinstance(dgram["downtime_ms"], float) and dgram["criu_error"] is None
    assert (stream["expected"], stream["outcome"]) == ("fails", "xfailed")
    assert "Can't dump half of stream unix connection" in stream["criu_error"]
    assert stream["resumed_after_failure"] is True
    for key in ("duplicates", "artifacts"):
        assert key in dgram and key in stream
    lines = out.splitlines()
    assert any(line.startswith("dgram-echo") and " passed " in line for line in lines)
    assert any(line.startswith("stream-echo") and " xfailed " in line
               and "Can't dump half" in line for line in lines)
