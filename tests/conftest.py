"""Shared test set-up.

Tests marked ``criu`` need a working CRIU and root: the project's own pytest plugin
(harness.pytest_plugin) skips them with the reason, or fails them under CI=true.
"""

from __future__ import annotations

import pytest


@pytest.fixture(params=["rpc", "cli"])
def backend_name(request: pytest.FixtureRequest) -> str:
    """Each CRIU test runs through both backends."""
    return str(request.param)
