"""The plugin's options and markers, and whether CRIU can run here at all."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from harness.criu import BACKENDS, Backend, get_backend
from harness.errors import HarnessError
from harness.isolation import Isolation
from harness.result import Keep, ScenarioResult

if TYPE_CHECKING:
    from harness.pytest_plugin.migration import MigrationFixture  # noqa: F401 (named in a StashKey below)

SETTINGS = pytest.StashKey["CriuSettings"]()
RESULT = pytest.StashKey[ScenarioResult]()
CALL_REPORT = pytest.StashKey[pytest.TestReport]()
FIXTURE = pytest.StashKey["MigrationFixture"]()


def result_of(item: pytest.Item) -> ScenarioResult | None:
    """The migration a test ran: its migration fixture's, or its scenario file's."""
    fixture = item.stash.get(FIXTURE, None)
    return fixture.result if fixture is not None else item.stash.get(RESULT, None)


# --- options and markers ------------------------------------------------------------------------


@dataclass(frozen=True)
class CriuSettings:
    """The command line's CRIU choices, for every migration of the session."""

    backend: str = "rpc"
    binary: str | None = None
    keep: str = "failed"
    isolation: str | None = None  # None: each scenario's own, else the default


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("criu-harness", "CRIU live migration (criu-harness)")
    group.addoption("--criu-backend", choices=sorted(BACKENDS), default="rpc",
                    help="how to drive CRIU: rpc (pycriu) or cli (the criu binary); default rpc")
    group.addoption("--criu-binary", metavar="PATH", default=None,
                    help="the criu binary (default: $CRIU_BINARY, else criu on PATH)")
    group.addoption("--keep-artifacts", choices=[str(k) for k in Keep], default="failed",
                    help="keep run directories (images, CRIU logs, process output): "
                         "always, failed (default) or never")
    group.addoption("--criu-isolation", choices=[str(i) for i in Isolation], default=None,
                    help="run every workload isolated so: none, ns (its own PID and mount "
                         "namespaces) or ns+net (default: each scenario's own)")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SETTINGS] = CriuSettings(
        backend=config.getoption("criu_backend"),
        binary=config.getoption("criu_binary"),
        keep=config.getoption("keep_artifacts"),
        isolation=config.getoption("criu_isolation"),
    )
    config.addinivalue_line(
        "markers", "criu: needs a working CRIU and root (fails instead of skipping under CI=true)"
    )


@pytest.fixture(scope="session")
def criu_settings(pytestconfig: pytest.Config) -> CriuSettings:
    """The session's --criu-backend, --criu-binary and --keep-artifacts."""
    return pytestconfig.stash[SETTINGS]


# --- is CRIU there? -----------------------------------------------------------------------------


def criu_unavailable(settings: CriuSettings) -> str | None:
    """Why no migration can run here, or None when one can."""
    if os.geteuid() != 0:
        return "CRIU needs root"
    try:
        get_backend(settings.backend, settings.binary)
    except HarnessError as exc:
        return str(exc)
    return None


def require_criu(settings: CriuSettings) -> Backend:
    """The session's backend; skip the test when CRIU is missing, fail it under CI=true,
    where a missing CRIU is a broken machine rather than a developer's laptop."""
    reason = criu_unavailable(settings)
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and CRIU is not usable: {reason}", pytrace=False)
        pytest.skip(reason)
    return get_backend(settings.backend, settings.binary)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("criu") is not None:
        require_criu(item.config.stash[SETTINGS])


