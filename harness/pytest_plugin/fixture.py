"""The ``migration`` fixture: declare your own processes, migrate them, get the result."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.pytest_plugin import xfail
from harness.pytest_plugin.migration import MigrationFixture, SpawnedProcess
from harness.pytest_plugin.settings import (
    CALL_REPORT,
    FIXTURE,
    CriuSettings,
    require_criu,
)

__all__ = ["MigrationFixture", "SpawnedProcess", "migration"]

# A unix socket path holds at most 107 bytes: keep the run directory's name short.
_NAME_MAX = 24


def _short_name(nodename: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", nodename).strip("-")[:_NAME_MAX] or "test"


@pytest.fixture
def migration(
    request: pytest.FixtureRequest, criu_settings: CriuSettings
) -> Iterator[MigrationFixture]:
    """Declare your own processes, migrate them with CRIU and get the result."""
    backend = require_criu(criu_settings)
    item = request.node
    fixture = MigrationFixture(
        _short_name(item.name),
        Path(item.path),
        criu_settings,
        backend,
        expect=xfail.expected_failure(item),
        properties=item.user_properties,
    )
    item.stash[FIXTURE] = fixture
    try:
        yield fixture
    finally:
        report = item.stash.get(CALL_REPORT, None)
        fixture._finish(test_failed=report is None or report.failed)


