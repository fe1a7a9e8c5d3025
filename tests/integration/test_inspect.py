"""`criu-harness inspect`: predictions from /proc and sock_diag, never a dump; and how often
they are right, against the real dump of every built-in scenario."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import preflight, scenario
from harness.criu import get_backend
from harness.forecast import ForecastRun, judge
from harness.result import Keep

pytestmark = pytest.mark.criu

# Scenarios where inspect may say "no opinion" (each one listed, with why): none so far.
NO_OPINION_ALLOWED: dict[str, str] = {}


def inspect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", "inspect", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_process_in_the_callers_session_needs_shell_job() -> None:
    sleeper = subprocess.Popen(["sleep", "60"])  # our session: not a session leader
    try:
        refused = inspect(str(sleeper.pid), "--json")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        data = json.loads(refused.stdout)
        assert data["verdict"] == "refused"
        [tree] = data["trees"]
        assert tree["signature"] == "is not a session leader"
        assert any(f["helps"] and "--shell-job" in f["helps"] for f in tree["findings"])
        assert inspect(str(sleeper.pid), "--shell-job").returncode == 0
        # Nothing was dumped: the process runs on, never stopped.
        time.sleep(0.1)
        assert sleeper.poll() is None
        assert Path(f"/proc/{sleeper.pid}/stat").read_text().split()[2] in "SR"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_bad_usage_exits_2() -> None:
    assert inspect().returncode == 2
    assert inspect("1", "--scenario", "dgram-echo").returncode == 2
    gone = inspect(str(2**22 + 12345))
    assert gone.returncode == 2 and "no such process" in gone.stderr


def test_inspect_a_scenario_names_the_option_that_helps() -> None:
    out = inspect("--scenario", "inet-tcp-without-established")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "helps: --tcp-established" in out.stdout
    assert inspect("--scenario", "inet-tcp-without-established", "--tcp-established",
                   "--network-lock", "nftables").returncode == 0


def test_accuracy_over_every_builtin_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    """Each built-in scenario started, inspected just before its first dump, then migrated:
    the prediction against what `criu dump` did. No wrong prediction is allowed."""
    backend = get_backend("cli")
    judgements = []
    unrunnable = []
    for path in scenario.builtin_paths():
        s = scenario.load(path)
        if preflight.missing_features(s.features, backend.criu.path):
            unrunnable.append(s.name)  # gpu-dgram-echo without a GPU: no dump to judge by
            continue
        run = ForecastRun(s, backend, keep=Keep.NEVER, fingerprint=False)
        result = run.run()
        judgements.append(judge(s.name, run.plan.name, run.predictions, result))
    counts = {v: sum(1 for j in judgements if j.verdict == v)
              for v in ("right", "wrong", "no opinion", "not run")}
    with capsys.disabled():
        print(f"\ninspect accuracy, criu {backend.criu.version()}, {len(judgements)} scenarios: "
              + ", ".join(f"{n} {v}" for v, n in counts.items()))
        for j in judgements:
            print(f"  {j.line()}")
        for name in unrunnable:
            print(f"  skipped    {name}: a CRIU feature it needs is missing here")
    assert counts["wrong"] == 0 and counts["not run"] == 0, [j.line() for j in judgements]
    unexplained = [j.scenario for j in judgements
                   if j.verdict == "no opinion" and j.scenario not in NO_OPINION_ALLOWED]
    assert not unexplained
    assert os.geteuid() == 0
