"""Ctrl-C in the middle of a migration leaves no workload behind, frozen or not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from harness.waiting import wait_for

pytestmark = pytest.mark.criu

HARNESS = [sys.executable, "-m", "harness.cli"]


def workloads_of(run_prefix: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "harness.workloads" in cmd and run_prefix in cmd:
            found.append(proc)
    return found


def mid_migration(harness: psutil.Process) -> bool:
    """A CRIU child is running, or a workload of this run is stopped: a migration is on."""
    try:
        kids = harness.children(recursive=True)
    except psutil.NoSuchProcess:
        return False
    for kid in kids:
        try:
            if kid.status() == psutil.STATUS_STOPPED:
                return True
            if kid.name() == "criu" and {"dump", "restore", "swrk"} & set(kid.cmdline()):
                return True
        except psutil.Error:
            continue
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_mid_migration_leaves_nothing(
    tmp_path: Path, backend_name: str, sig: signal.Signals
) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the run directory lands here
    proc = subprocess.Popen(
        [*HARNESS, "run", "dgram-echo", "--iterations", "50", "--backend", backend_name],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    harness = psutil.Process(proc.pid)
    try:
        wait_for(lambda: mid_migration(harness), timeout=30, interval=0.001)
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err.decode()
    assert b"interrupted" in err and b"Traceback" not in err
    leftovers = workloads_of(str(tmp_path))
    assert [p for p in leftovers if p.status() != psutil.STATUS_ZOMBIE] == []
    # The interrupted run's evidence is kept.
    assert any(tmp_path.glob("criu-harness-dgram-echo-*/images"))
