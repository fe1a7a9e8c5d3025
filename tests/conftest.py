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

# The base of pytest's temporary directories when this run made it (see pytest_configure).
_SHORT_BASE: list[Path] = []


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``-n N``) every worker's tmp_path gains a ``popen-gwN`` level, and
    the run directories that tests put there then hold unix socket paths over the 107 bytes a
    socket name may have: the controller gives the workers a short base of its own instead
    (tryfirst: before pytest's tmp_path factory reads the option)."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput") \
            and config.option.basetemp is None:
        base = Path(tempfile.mkdtemp(prefix="pt-", dir="/tmp"))
        _SHORT_BASE.append(base)
        config.option.basetemp = str(base)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The short base goes once every test passed; a failure's directories stay to be read."""
    if _SHORT_BASE and exitstatus == 0 and not hasattr(session.config, "workerinput"):
        shutil.rmtree(_SHORT_BASE[0], ignore_errors=True)


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
