"""Nothing of a run survives its end, whatever ends it: an interrupt during the restore, a
SIGKILL of the harness while the workloads run, while they are frozen and while CRIU restores
them, a workload that daemonizes; and every role is migrated, none silently skipped.

The precise moments come from a CRIU action script (``--action-script``, through both
backends): at the chosen stage it writes the images directory into a marker file and sleeps,
so the test acts while CRIU is at that very stage.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from runs import of_run

from harness import cgroup, scenario
from harness.criu import get_backend, yard
from harness.result import Outcome
from harness.runner import ScenarioRun
from harness.waiting import wait_for

pytestmark = pytest.mark.criu

HARNESS = [sys.executable, "-m", "harness"]
HOOK = """#!/bin/sh
[ "$CRTOOLS_SCRIPT_ACTION" = "$HOOK_STAGE" ] || exit 0
echo "$CRTOOLS_IMAGE_DIR" > "$HOOK_MARKER"
sleep "$HOOK_SLEEP"
"""


def our_cgroups(pid: int) -> list[Path]:
    top = cgroup.root()
    base = top / cgroup.BASE if top is not None else None
    return sorted(base.glob(f"{pid}.*")) if base is not None and base.is_dir() else []


def hooked_scenario(tmp_path: Path, action: str) -> Path:
    """dgram-echo with the action script on the given CRIU action."""
    hook = tmp_path / "hook.sh"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    text = scenario.find("dgram-echo").path.read_text()
    table = f'[criu.{action}]\nextra_args = ["--action-script", "{hook}"]\n\n'
    path = tmp_path / "dgram-echo-hooked.toml"
    path.write_text(text.replace("[expect]\n", table + "[expect]\n", 1))
    return path


@contextmanager
def harness_at(tmp_path: Path, backend: str, action: str, stage: str) -> Iterator[
        tuple[subprocess.Popen[bytes], Path]]:
    """The harness running the hooked scenario, stopped by the hook at stage; yields the
    process and the run directory."""
    marker = tmp_path / "marker"
    env = {**os.environ, "TMPDIR": str(tmp_path), "HOOK_STAGE": stage,
           "HOOK_MARKER": str(marker), "HOOK_SLEEP": "3"}
    proc = subprocess.Popen(
        [*HARNESS, "run", str(hooked_scenario(tmp_path, action)), "--backend", backend],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        wait_for(marker.exists, timeout=60, interval=0.01)
        time.sleep(0.2)  # well inside the hook's sleep
        [run_dir] = tmp_path.glob("criu-harness-*")
        yield proc, run_dir
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_an_interrupt_during_the_restore_leaves_nothing_and_keeps_the_cycle(
    short_tmp: Path, backend_name: str
) -> None:
    with harness_at(short_tmp, backend_name, "restore", "post-restore") as (proc, run_dir):
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err.decode()
    # The restored server (stopped, with the harness as its subreaper) went with the run.
    assert of_run(short_tmp) == []
    assert our_cgroups(proc.pid) == []
    # The interrupted cycle is in the kept run's record, with the restore it was in.
    [cycle] = json.loads((run_dir / "result.json").read_text())["cycles"]
    assert cycle["outcome"] == "error"
    assert cycle["reason"] == "interrupted during restore of server"
    restore = [c for c in cycle["calls"] if c["action"] == "restore"]
    assert restore and restore[-1]["error"] == "interrupted (KeyboardInterrupt)"
    calls = json.loads((run_dir / "criu-calls.json").read_text())
    assert [c["action"] for c in calls] == [c["action"] for c in cycle["calls"]]


@pytest.mark.parametrize(
    ("action", "stage", "what"),
    [("dump", "pre-dump", "frozen"), ("restore", "post-restore", "being restored")],
)
def test_a_sigkill_of_the_harness_leaves_nothing_within_5_s(
    short_tmp: Path, backend_name: str, action: str, stage: str, what: str
) -> None:
    with harness_at(short_tmp, backend_name, action, stage) as (proc, run_dir):
        states = {p.info["status"] for p in of_run(run_dir) if "harness.workloads" in
                  " ".join(p.info["cmdline"] or [])}
        if what == "frozen":
            assert states == {psutil.STATUS_STOPPED}, states
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed = time.monotonic()
        # The keeper (outside the tree) empties the run's cgroup; CRIU dies with its parent.
        wait_for(lambda: not of_run(short_tmp) and not our_cgroups(proc.pid),
                 timeout=5, interval=0.05)
        assert time.monotonic() - killed < 5
    assert "emptied and removed" in (run_dir / "keeper.log").read_text()
    # A CRIU killed while restoring leaves its cgroup yard mounted: the keeper releases it.
    wait_for(lambda: not yard.yards(short_tmp), timeout=5, interval=0.05)


def test_a_sigkill_of_the_harness_while_the_loop_runs_leaves_nothing(short_tmp: Path) -> None:
    env = {**os.environ, "TMPDIR": str(short_tmp)}
    proc = subprocess.Popen([*HARNESS, "run", "dgram-echo", "--iterations", "1000"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(short_tmp.glob("criu-harness-*/images")), timeout=30, interval=0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        wait_for(lambda: not of_run(short_tmp) and not our_cgroups(proc.pid),
                 timeout=5, interval=0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


DAEMON = """
import os, sys, time
if os.fork():
    sys.exit(0)              # the launcher exits at once
os.setsid()
if os.fork():
    os._exit(0)
time.sleep(1000)             # the daemon: its own session, reparented away from the harness
"""


def test_a_workload_that_daemonizes_leaves_nothing(tmp_path: Path, backend_name: str) -> None:
    text = scenario.find("dgram-echo").path.read_text()
    extra = f'''
[[process]]
role = "daemon"
argv = ["{{python}}", "-c", {json.dumps(DAEMON)}, "{tmp_path}"]
'''
    path = tmp_path / "with-daemon.toml"
    path.write_text(text.replace("[expect]\n", extra + "\n[expect]\n", 1))
    s = scenario.load(path)
    result = ScenarioRun(s, get_backend(backend_name), keep="never").run()
    # Without a pidfile, its launcher's exit is the end of that workload: an error, but the
    # daemon it left (in a session of its own, its parent gone) must not outlive the run.
    assert result.outcome is Outcome.ERROR and "daemon" in result.reason
    assert of_run(tmp_path) == []


def test_roles_the_plan_does_not_name_are_migrated_too(tmp_path: Path) -> None:
    text = scenario.find("dgram-echo").path.read_text()
    extra = "".join(
        f'\n[[process]]\nrole = "{name}"\n'
        f'argv = ["{{python}}", "-c", "import time\\nwhile True: time.sleep(0.01)"]\n'
        for name in ("x1", "x2", "x3")
    )
    path = tmp_path / "five-roles.toml"
    path.write_text(text.replace("[expect]\n", extra + "\n[expect]\n", 1))
    result = ScenarioRun(scenario.load(path), get_backend("rpc"), keep="never").run()
    assert result.outcome is Outcome.PASSED, result.reason
    [cycle] = result.cycles
    dumped = [c.log_path.parent.name for c in cycle.calls if c.action == "dump"]
    restored = [c.log_path.parent.name for c in cycle.calls if c.action == "restore"]
    assert dumped == restored == ["server", "client", "x1", "x2", "x3"]
