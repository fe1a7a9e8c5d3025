"""The library is typed, and stays so: mypy --strict over harness/ (settings in pyproject)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_strict_passes() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "harness"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
