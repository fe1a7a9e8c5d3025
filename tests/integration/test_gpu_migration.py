"""GPU migrations on a machine without a GPU: everything but CUDA itself, on real CRIU.

The GPU echo pair runs with its state in host memory (``--state host``); CRIU's CUDA plugin is
loaded from the directory the scenario names and, through CRIU's own fault injection
(``CRIU_FAULT=138``: FI_PLUGIN_CUDA_FORCE_ENABLE), runs as if a GPU were there, calling a
stand-in cuda-checkpoint that answers like the real one for processes without CUDA. What this
proves: the plugin directory and the chosen cuda-checkpoint reach CRIU through both backends,
the built-in scenario's plan, options and checks migrate the pair with nothing lost, and the
counter the client checks goes on across each migration. What it cannot: CUDA's own part.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from harness import cli, gpu, matrix, preflight, scenario
from harness.criu import get_backend, plugins
from harness.runner import ScenarioRun
from harness.verification import read_events
from harness.workloads.continuity import counter_breaks

pytestmark = pytest.mark.criu

FORCE_CUDA_PLUGIN = 138  # criu/include/fault-injection.h: FI_PLUGIN_CUDA_FORCE_ENABLE
STAND_IN = """#!/bin/sh
echo "$*" >> "$STAND_IN_LOG"
case "$1" in
-h|--help)
    printf '%s\\n' 'CUDA checkpoint and restore utility.' 'Version 0.0 (stand-in).' \\
        '--get-state --pid <pid>' \\
        '--action lock | checkpoint | restore | unlock --pid <pid> [--timeout <ms>]' \\
        '--get-restore-tid --pid <pid>'
    exit 0 ;;
esac
echo "Could not get the restore thread ID: process has no CUDA state"
exit 1
"""


@pytest.fixture
def plugin_home() -> Path:
    try:
        return plugins.plugin_dir(["cuda"])
    except plugins.PluginMissing as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {exc}", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cuda-checkpoint that logs how it was called, first on CRIU's PATH; the log's path."""
    tool = tmp_path / "bin" / "cuda-checkpoint"
    tool.parent.mkdir()
    tool.write_text(STAND_IN)
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "cuda-checkpoint.calls"
    monkeypatch.setenv("STAND_IN_LOG", str(log))
    monkeypatch.setenv("PATH", os.environ["PATH"])  # restored after the test
    gpu.use_cuda_checkpoint(tool)
    return log


def test_a_trial_with_the_plugin_loaded(backend_name: str, plugin_home: Path) -> None:
    criu = get_backend("cli").criu.path
    assert gpu.trial(criu, plugin_home, state="host", backend=backend_name) is None


def test_the_gpu_scenario_migrates_with_the_plugin_in_the_loop(
    backend_name: str, plugin_home: Path, stand_in: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builtin = scenario.find("gpu-dgram-echo")
    server, client = builtin.processes
    argv = tuple("8" if a == "256" else a for a in server.argv) + ("--state", "host")
    assert "--gpu-mb" in argv and argv != server.argv
    host = replace(builtin, features=(), processes=(replace(server, argv=argv), client))

    # The harness passes CRIU only the fault it is asked for (an inherited CRIU_FAULT would
    # be a fault no call record shows): the plugin is forced on through --criu-fault's path.
    backend = get_backend(backend_name, fault=FORCE_CUDA_PLUGIN)
    result = ScenarioRun(host, backend, iterations=2, keep="always").run()
    run_dir = Path(result.artifacts)
    try:
        assert result.outcome == "passed", result.reason
        assert result.plan == "server-running"
        assert (result.messages_lost, result.client_errors, result.duplicates) == (0, 0, 0)
        events = read_events(run_dir / "client.events")
        counters = [e["counter"] for e in events if e["event"] == "received"]
        assert len(counters) >= 3 * builtin.verify.min_progress
        assert counter_breaks(events) == [] and counters == sorted(counters)

        calls = [call for cycle in result.cycles for call in cycle.calls]
        assert len(calls) == 8  # 2 cycles x (2 dumps + 2 restores)
        assert {call.criu_options["plugin_dir"] for call in calls} == {str(plugin_home)}
        dump_logs = sorted(run_dir.glob("images/cycle-*/*/dump.log"))
        assert len(dump_logs) == 4
        for log in dump_logs:
            assert "cuda_plugin: initialized" in log.read_text(errors="replace"), log
        # The plugin ran the chosen cuda-checkpoint: to see what it supports, then per task.
        ran = stand_in.read_text().splitlines()
        assert "-h" in ran
        servers = {call.pid for call in calls if call.action == "dump"}
        assert {f"--get-restore-tid --pid {pid}" for pid in servers} <= set(ran)
    finally:
        if result.artifacts:
            shutil.rmtree(run_dir, ignore_errors=True)


def test_the_nightly_matrix_names_the_missing_piece(tmp_path: Path) -> None:
    cuda = preflight.probe(get_backend("cli").criu.path, "cuda")
    if cuda.available:
        pytest.skip("the cuda feature is present: the nightly migrates on the GPU instead")
    assert cli.main(["matrix", "--scenarios", "gpu-dgram-echo", "--out", str(tmp_path)]) == 0
    [night] = matrix.dated_dirs(tmp_path)
    results = json.loads((night / "results.json").read_text())
    cells = {(s["backend"], s["plan"]): s for s in results["scenarios"]}
    plans = {"server-running", "server-first", "client-first", "no-freeze"}
    assert set(cells) == {(b, p) for b in ("rpc", "cli") for p in plans}
    for result in cells.values():
        assert result["outcome"] == "skipped"
        assert result["reason"] == f"needs CRIU feature(s) missing here: cuda ({cuda.detail})"
    assert results["environment"]["features"]["cuda"] is False
