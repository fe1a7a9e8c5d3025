"""The nightly matrix for real: two nights into one base directory, the second compared with
the first."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.matrix import dated_dirs

pytestmark = pytest.mark.criu

SCENARIOS = ("dgram-echo", "stream-echo")
BACKENDS = ("rpc", "cli")


def night(out: Path) -> subprocess.CompletedProcess[str]:
    # A huge threshold: this checks the plumbing, and two one-cycle runs a second apart can
    # differ by more than 20% in downtime on a busy machine.
    argv = [sys.executable, "-m", "harness.cli", "matrix", "--scenarios", *SCENARIOS,
            "--out", str(out), "--threshold", "100", "--transports", "local"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def test_two_nights_are_dated_compared_and_recorded(tmp_path: Path) -> None:
    out = tmp_path / "nightly"
    first = night(out)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "no previous night to compare with" in first.stdout
    second = night(out)
    assert second.returncode == 0, second.stdout + second.stderr

    nights = dated_dirs(out)
    assert len(nights) == 2, list(out.iterdir())
    old, new = nights
    assert f"compared with {old}" in second.stdout
    assert not (old / "compare.json").exists()

    results = json.loads((new / "results.json").read_text())
    assert results["backend"] == "matrix"
    assert results["environment"]["criu_version"] == results["criu_version"]
    assert results["environment"]["kernel"]
    assert isinstance(results["environment"]["features"], dict)
    keys = {(s["name"], s["backend"], s["plan"]) for s in results["scenarios"]}
    # Every scenario under both backends and each plan it names ([expect.plan.X] included).
    assert {(n, b) for n, b, _ in keys} == {(n, b) for n in SCENARIOS for b in BACKENDS}
    outcomes = {(s["name"], s["backend"], s["plan"]): s["outcome"] for s in results["scenarios"]}
    assert outcomes[("dgram-echo", "rpc", "server-first")] == "passed"
    assert outcomes[("stream-echo", "cli", "server-first")] == "xfailed"

    comparison = json.loads((new / "compare.json").read_text())
    assert comparison["old"] == str(old) and comparison["regressions"] == 0
    verdicts = {(v["scenario"], v["backend"], v["plan"]): v["kind"] for v in comparison["verdicts"]}
    assert set(verdicts) == keys
    # The stream pair's error names a fresh run directory each night: still the same signature.
    assert verdicts[("stream-echo", "rpc", "server-first")] == "unchanged"
    assert (new / "compare.txt").read_text().splitlines()[-1].startswith("0 regression(s)")

    suite = ET.parse(new / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert int(suite.get("tests", "0")) == len(keys) and suite.get("failures") == "0"
    assert len(suite.findall("testcase/skipped")) == 2  # the two expected failures

    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["stamp"] for h in history] == [old.name, new.name]
    assert history[1]["regressions"] == 0 and history[0]["regressions"] is None
    assert "dgram-echo/rpc/server-first" in history[1]["downtime_ms"]

    page = (new / "report.html").read_text()
    assert "<svg" in page and "unchanged" in page


def test_a_regression_against_the_previous_night_exits_1(tmp_path: Path) -> None:
    """A previous night in which the stream pair's dump failed for another reason: tonight's
    expected failure then has a changed signature, a regression, and the night exits 1."""
    out = tmp_path / "nightly"
    previous = tmp_path / "previous"
    previous.mkdir()
    fake = {"backend": "matrix", "scenarios": [
        {"name": "stream-echo", "backend": "rpc", "plan": "server-first", "outcome": "xfailed",
         "criu_error": "Error (criu/sk-unix.c:1): unix: External socket is used.", "cycles": []},
    ]}
    (previous / "results.json").write_text(json.dumps(fake))
    argv = [sys.executable, "-m", "harness.cli", "matrix", "--scenarios", "stream-echo",
            "--backends", "rpc", "--out", str(out), "--previous", str(previous)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert ("signature changed: stream-echo [rpc, server-first]: 'unix: External socket is used.'"
            " -> \"unix: Can't dump half of stream unix connection") in proc.stdout
    [night_dir] = dated_dirs(out)
    assert "signature changed" in (night_dir / "report.html").read_text()


def test_the_transport_axis_in_parallel(tmp_path: Path) -> None:
    """dgram-echo under each transport (page-server and lazy with --isolation ns), two
    results at a time: each its own key, carrying its transport and isolation."""
    out = tmp_path / "nightly"
    argv = [sys.executable, "-m", "harness.cli", "matrix", "--scenarios", "dgram-echo",
            "--backends", "cli", "--out", str(out), "-j", "2"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [night_dir] = dated_dirs(out)
    results = json.loads((night_dir / "results.json").read_text())["scenarios"]
    got = {(s["plan"], s["transport"], s["isolation"]): s["outcome"] for s in results}
    local = {(p, "local", "none") for p in ("server-first", "server-first-overlapped",
                                           "client-first", "no-freeze")}
    assert set(got) == local | {("server-first", "page-server", "ns"),
                                ("server-first", "lazy", "ns")}
    assert set(got.values()) == {"passed"}, got
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert {"dgram-echo/cli/server-first/page-server/ns",
            "dgram-echo/cli/server-first/lazy/ns"} <= set(history[0]["downtime_ms"])
