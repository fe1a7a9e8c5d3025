"""What a run leaves behind: private report directories and bundles, and no pile of kept run
directories."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.rundir import MARKER, PREFIX

pytestmark = pytest.mark.criu

HARNESS = [sys.executable, "-m", "harness.cli"]


def harness(*args: str, tmpdir: Path, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TMPDIR": str(tmpdir), **(env or {})}, check=False)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_reports_and_bundles_are_private(short_tmp: Path) -> None:
    old = os.umask(0o022)
    try:
        proc = harness("run", "stream-echo", "--keep", "--report", str(short_tmp / "a" / "b"),
                       tmpdir=short_tmp)
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = short_tmp / "a" / "b"
    [bundle] = (report / "artifacts").glob("*.tar.gz")
    assert [mode(p) for p in (short_tmp / "a", report, report / "artifacts")] == [0o700] * 3
    assert mode(bundle) == 0o600
    [run] = short_tmp.glob(f"{PREFIX}stream-echo-*")
    assert mode(run) == 0o700 and mode(run / "images") == 0o700
    assert (run / MARKER).is_file()


def old_kept_run(root: Path, name: str, age_s: float) -> Path:
    """A kept run directory of a harness process long gone."""
    path = root / f"{PREFIX}{name}"
    (path / "images").mkdir(parents=True)
    (path / MARKER).write_text(json.dumps(
        {"harness": "criu-harness", "pid": 1, "started": 0.0, "created": time.time() - age_s}
    ))
    return path


def test_kept_runs_are_pruned_to_keep_max(short_tmp: Path) -> None:
    old = [old_kept_run(short_tmp, f"dgram-echo-old{i}", 1000 - i) for i in range(3)]
    stranger = short_tmp / f"{PREFIX}not-a-run"  # the prefix alone does not make it ours
    stranger.mkdir()
    proc = harness("run", "stream-echo", "--keep", tmpdir=short_tmp,
                   env={"CRIU_HARNESS_KEEP_MAX": "2"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pruned = [line for line in proc.stdout.splitlines() if line.startswith("pruned: ")]
    assert len(pruned) == 2 and str(old[0]) in pruned[0] and str(old[1]) in pruned[1]
    assert [p.exists() for p in old] == [False, False, True]
    assert stranger.exists()
    [this_run] = [p for p in short_tmp.glob(f"{PREFIX}stream-echo-*")]
    assert this_run.exists()  # the run's own kept directory is never pruned by itself
    # A later run: the earlier one's directory is an old kept run like any other.
    proc = harness("run", "stream-echo", "--keep-max", "0", tmpdir=short_tmp)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not old[2].exists() and not this_run.exists()
    assert stranger.exists()
