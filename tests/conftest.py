"""Shared test set-up: tests marked ``criu`` need a working CRIU and root.

Without them such a test is skipped with the reason, except under CI=true, where a missing
CRIU is a broken machine and the test fails instead.
"""

from __future__ import annotations

import os
import shutil

import pytest

from harness.criu import get_backend
from harness.errors import HarnessError

# Scenario files the tests load themselves (some are meant to fail): the pytest plugin would
# otherwise collect every scenario file under tests/ as a test of its own.
collect_ignore_glob = ["integration/scenarios/*.toml"]


def criu_missing() -> str | None:
    """Why CRIU tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "CRIU needs root"
    if shutil.which(os.environ.get("CRIU_BINARY", "criu")) is None:
        return "no criu binary on PATH (run scripts/install-criu)"
    try:
        get_backend("rpc")
    except HarnessError as exc:
        return str(exc)
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("criu") is None:
        return
    reason = criu_missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and CRIU is not usable: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(params=["rpc", "cli"])
def backend_name(request: pytest.FixtureRequest) -> str:
    """Each CRIU test runs through both backends."""
    return str(request.param)
