"""`criu-harness check` on this machine, and scenarios skipped for a missing feature."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from harness import preflight, scenario
from harness.criu import get_backend
from harness.runner import ScenarioRun

pytestmark = pytest.mark.criu


def test_check_prints_the_table_and_passes() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "harness.cli", "check"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {line.split()[0]: line.split()[1] for line in out.stdout.splitlines()[1:-1]}
    assert rows["root"] == "yes" and rows["criu"] not in ("no", "unknown")
    assert out.stdout.splitlines()[3].split()[:3] == ["criu", "check", "yes"]
    for name in preflight.FEATURES:
        assert rows[name] in ("yes", "no")
    assert out.stdout.splitlines()[-1].startswith("ready")


def test_feature_probes_agree_with_criu_and_are_cached() -> None:
    criu = get_backend("cli").criu.path
    first = preflight.probe(criu, "uffd")
    again = subprocess.run([criu, "check", "--feature", "uffd"], capture_output=True, check=False)
    assert first.available == (again.returncode == 0)
    assert preflight.probe(criu, "uffd") is first  # asked once per process


def test_a_scenario_needing_a_missing_feature_is_skipped() -> None:
    # No CRIU knows this feature, so it is missing everywhere: the run must not start.
    needy = replace(scenario.find("dgram-echo"), features=("no_such_feature",))
    result = ScenarioRun(needy, get_backend("cli"), keep="failed").run()
    assert result.outcome == "skipped" and result.ok
    assert result.reason.startswith("needs CRIU feature(s) missing here: no_such_feature")
    assert result.cycles == [] and result.artifacts == ""
