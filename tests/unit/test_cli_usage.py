"""Bad input through the command line, as a user meets it: one line on stderr naming what is
wrong, exit status 2, nothing started, nothing left behind, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = [sys.executable, "-m", "harness.cli"]


def harness(*args: str, tmpdir: Path | None = None, timeout: float = 60,
            prefix: tuple[str, ...] = (), env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **(env or {})}
    if tmpdir is not None:
        environ["TMPDIR"] = str(tmpdir)  # where a run directory would appear
    return subprocess.run([*prefix, *HARNESS, *args], capture_output=True, text=True,
                          env=environ, timeout=timeout, check=False)


def refused(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    """The one line a usage error prints; it must name each of words."""
    assert proc.returncode == 2, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def kept_run(base: Path) -> Path:
    """A minimal kept run directory, as `bundle` and `restore` expect one."""
    run = base / "criu-harness-demo-x"
    (run / "images" / "server").mkdir(parents=True)
    (run / "result.json").write_text('{"name": "demo", "outcome": "failed"}')
    (run / "images" / "server" / "pages-1.img").write_bytes(b"secret memory")
    return run


# --- numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_threshold_must_be_finite(tmp_path: Path, value: str) -> None:
    old = tmp_path / "results.json"
    old.write_text('{"scenarios": []}')
    refused(harness("compare", str(old), str(old), f"--threshold={value}"), "--threshold", value)


# --- output paths, checked before anything runs ------------------------------------------------


def test_bundle_into_a_missing_directory(tmp_path: Path) -> None:
    run = kept_run(tmp_path)
    refused(harness("bundle", str(run), "-o", "/nonexistent/dir/x.tar.gz"), "/nonexistent/dir")


def test_bundle_onto_an_existing_directory_leaves_nothing(tmp_path: Path) -> None:
    run = kept_run(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    refused(harness("bundle", str(run), "-o", str(out)), str(out), "directory")
    assert list(out.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [run.name, "out"]  # no .partial
