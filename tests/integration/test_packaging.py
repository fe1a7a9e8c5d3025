"""A real, non-editable install (`pip install .`) ships the built-in scenarios: `criu-harness
list` names them, and a native scenario finds its C sources, outside any checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("pyproject.toml", "README.md", "harness", "scenarios")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """criu-harness installed with pip into a target directory, from a copy of the checkout
    (an in-tree build would leave build/ and *.egg-info behind in it)."""
    base = tmp_path_factory.mktemp("packaging")
    source = base / "source"
    source.mkdir()
    for name in SHIPPED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, source / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, source / name)
    target = base / "target"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
         str(target), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"pip install failed:\n{proc.stdout}\n{proc.stderr}")
    return target


def run_installed(target: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # From elsewhere than the checkout, with the installed copy first on the path.
    env = {**os.environ, "PYTHONPATH": str(target)}
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, cwd=target.parent, env=env, timeout=60, check=False)


def test_the_install_is_not_the_checkout(installed: Path) -> None:
    proc = run_installed(installed, "--help")
    assert proc.returncode == 0, proc.stderr
    where = subprocess.run(
        [sys.executable, "-c", "import harness.scenario as s; print(s.SCENARIO_DIR)"],
        capture_output=True, text=True, cwd=installed.parent, check=True,
        env={**os.environ, "PYTHONPATH": str(installed)},
    ).stdout.strip()
    assert where == str(installed / "harness" / "scenarios")
    assert not (installed / "harness" / "scenarios").is_symlink()


def test_list_names_every_built_in_scenario(installed: Path) -> None:
    proc = run_installed(installed, "list")
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert names == sorted(p.stem for p in (ROOT / "scenarios").glob("*.toml"))
    assert "dgram-echo" in names and "native-dgram" in names


def test_native_sources_are_shipped(installed: Path) -> None:
    native = installed / "harness" / "scenarios" / "native"
    assert sorted(p.name for p in native.iterdir()) == sorted(
        p.name for p in (ROOT / "scenarios" / "native").iterdir()
    )
