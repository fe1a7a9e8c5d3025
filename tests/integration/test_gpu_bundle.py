"""The bundle carried to a GPU machine works on its own: built here, it runs the harness with
its own criu (through its own loader and libraries), its own Python packages and plugin, under
a system Python that has none of them. Only the GPU is missing: the series runs in host memory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.criu

REPO = Path(__file__).resolve().parents[2]


def system_python() -> str | None:
    """The system's python3, if it can run the harness (3.11 or later); it has none of the
    harness's packages, so the bundle's must do."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        return None
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info >= (3, 11))"],
                             capture_output=True, text=True, check=False).stdout.strip()
    return python if version == "True" else None


def test_a_bundle_runs_the_check_and_the_series_by_itself(tmp_path: Path) -> None:
    made = subprocess.run([str(REPO / "scripts/gpu-bundle"), "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stdout + made.stderr
    root = tmp_path / "criu-harness-gpu"
    assert (tmp_path / "criu-harness-gpu.tar.gz").is_file()
    manifest = (root / "MANIFEST").read_text()
    assert "criu: " in manifest and "psutil " in manifest
    assert "cuda-checkpoint: not included" in manifest

    python = system_python() or sys.executable
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PYTHON=python, PATH="/usr/sbin:/usr/bin:/sbin:/bin")  # no criu, no venv on PATH
    ran = subprocess.run([str(root / "gpu-run"), "--sizes", "8", "--state", "host", "check",
                          "series"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=False, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"{root}/bin/criu" in ran.stdout  # the check found the bundled criu, and it ran
    [results] = sorted((root / "results").glob("*.tar.gz"))
    series = json.loads(next((root / "results").glob("*/series/series.json")).read_text())
    [point] = series["points"]
    assert (point["gpu_mb"], point["state"], point["outcome"]) == (8, "host", "passed")
    assert point["dump_ms"] and point["restore_ms"] and point["image_bytes"]
    assert results.stat().st_size > 0
