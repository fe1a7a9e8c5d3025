"""What a run leaves behind: private report directories and bundles."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness.rundir import PREFIX

pytestmark = pytest.mark.criu

HARNESS = [sys.executable, "-m", "harness.cli"]


def harness(*args: str, tmpdir: Path, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TMPDIR": str(tmpdir), **(env or {})}, check=False)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_reports_and_bundles_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        proc = harness("run", "stream-echo", "--keep", "--report", str(tmp_path / "a" / "b"),
                       tmpdir=tmp_path)
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = tmp_path / "a" / "b"
    [bundle] = (report / "artifacts").glob("*.tar.gz")
    assert [mode(p) for p in (tmp_path / "a", report, report / "artifacts")] == [0o700] * 3
    assert mode(bundle) == 0o600
    [run] = tmp_path.glob(f"{PREFIX}stream-echo-*")
    assert mode(run) == 0o700 and mode(run / "images") == 0o700
