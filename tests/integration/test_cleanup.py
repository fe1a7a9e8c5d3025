"""`criu-harness cleanup` on real leftovers: a run cgroup whose harness is gone, with a sleeping
and a stopped process in it; a live run's cgroup (only with --all); CRIU's cgroup yard left
mounted in a run directory (only once nothing uses that directory)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import cgroup, cleanup
from harness.cgroup import RunCgroup
from harness.criu import yard

pytestmark = pytest.mark.criu  # root, and the cgroup v2 hierarchy CRIU runs need

HARNESS = [sys.executable, "-m", "harness"]


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def sleeper(group: RunCgroup, stopped: bool = False) -> subprocess.Popen[bytes]:
    """A process inside group, in a session of its own (as a workload would be)."""
    proc = subprocess.Popen(["sleep", "1000"], preexec_fn=group.enter(), start_new_session=True)
    if stopped:
        os.kill(proc.pid, signal.SIGSTOP)
    return proc


@pytest.fixture
def top() -> Path:
    root = cgroup.root()
    if root is None:
        pytest.skip("no cgroup v2 hierarchy mounted")
    return root


@pytest.fixture
def leftover(top: Path) -> Iterator[tuple[RunCgroup, list[subprocess.Popen[bytes]]]]:
    """A run cgroup as a harness killed with its keeper leaves it: owner pid gone, a role's
    cgroup with a sleeping and a stopped process in it."""
    base = top / cgroup.BASE
    base.mkdir(exist_ok=True)
    group = RunCgroup(base / f"{dead_pid()}.criu-harness-cleanup-{uuid.uuid4().hex[:8]}")
    group.path.mkdir()
    role = group.child("server")
    procs = [sleeper(role), sleeper(role, stopped=True)]
    try:
        yield group, procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        group.kill()
        group.remove()


def test_cleanup_ends_a_run_whose_harness_is_gone(
    leftover: tuple[RunCgroup, list[subprocess.Popen[bytes]]],
) -> None:
    group, procs = leftover
    proc = subprocess.run([*HARNESS, "cleanup"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [line] = [x for x in proc.stdout.splitlines() if x.startswith(str(group.path))]
    pids = " ".join(str(p.pid) for p in sorted(procs, key=lambda p: p.pid))
    assert line == (f"{group.path} (harness {group.owner}): killed 2 process(es): {pids}; "
                    "removed")
    for p in procs:  # the stopped one too
        assert p.wait(timeout=5) == -signal.SIGKILL
    assert not group.path.exists()


def test_a_live_run_is_left_alone_unless_all(top: Path) -> None:
    # A private base: --all on the real one would end other runs on this machine.
    base = top / f"criu-harness-test-{os.getpid()}"
    base.mkdir()
    owner = subprocess.Popen(["sleep", "1000"])  # a live "harness"
    group = RunCgroup(base / f"{owner.pid}.criu-harness-live")
    group.path.mkdir()
    proc = sleeper(group)
    lines: list[str] = []
    try:
        assert cleanup.cleanup(cgroups=base, mounts=base, echo=lines.append) == []
        assert lines == ["no leftover run: nothing to clean up"] and proc.poll() is None
        [done] = cleanup.cleanup(include_live=True, cgroups=base, mounts=base,
                                 echo=lines.append)
        assert done.ok and done.killed == [proc.pid] and done.owner == owner.pid
        assert proc.wait(timeout=5) == -signal.SIGKILL and not group.path.exists()
    finally:
        for p in (proc, owner):
            p.kill()
            p.wait()
        group.kill()
        group.remove()
        base.rmdir()


def mount_tmpfs(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "none", str(path)], check=True)


def test_a_yard_a_killed_criu_left_is_released_once_nothing_uses_its_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "criu-harness-dgram-echo-abc123"
    spot = run_dir / "images" / "server" / ".criu.cgyard.Xy12Zw"
    mount_tmpfs(spot)
    mount_tmpfs(spot / "unified")  # as CRIU mounts each hierarchy inside
    user = subprocess.Popen(["sleep", "1000"], cwd=run_dir)
    try:
        assert cleanup.leaked_yards(tmp_path) == []  # a process still works in that run
    finally:
        user.kill()
        user.wait()
    try:
        lines: list[str] = []
        [done] = cleanup.cleanup(cgroups=tmp_path / "none", mounts=tmp_path, echo=lines.append)
        assert done.ok and lines == [
            f"{spot}: CRIU's cgroup yard, left mounted by a killed CRIU; unmounted"]
        assert yard.yards(tmp_path) == [] and not spot.exists()
    finally:
        yard.release(tmp_path)
