"""Shared test set-up.

Tests marked ``criu`` need a working CRIU and root: the project's own pytest plugin
(harness.pytest_plugin) skips them with the reason, or fails them under CI=true. Every test's
run directories go to pytest's temporary directory (run_dirs_in_pytest_tmp).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(params=["rpc", "cli"])
def backend_name(request: pytest.FixtureRequest) -> str:
    """Each CRIU test runs through both backends."""
    return str(request.param)


@pytest.fixture(autouse=True)
def run_dirs_in_pytest_tmp(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Run directories (mkdtemp in the temp directory), kept or not, land in pytest's own
    temporary directory, which pytest cleans up: a failing test leaks nothing into /tmp.

    Not tmp_path itself: its name, the test's, would leave too few of the 107 bytes a unix
    socket path may have for the run directory's sockets.
    """
    base = tmp_path_factory.mktemp("run")
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    monkeypatch.setenv("TMPDIR", str(base))  # for the harness run in a subprocess
    return base


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A directory with a short path: the harness's run directory goes in it, and the unix
    socket paths inside must stay under 107 bytes (pytest's tmp_path names are long)."""
    path = Path(tempfile.mkdtemp(prefix="lo-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
