"""Scenario files collected as tests: ``pytest scenarios/``."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import scenario as scenario_files
from harness.errors import HarnessError
from harness.pytest_plugin import xfail
from harness.pytest_plugin.reporting import record_properties
from harness.pytest_plugin.settings import RESULT, SETTINGS, require_criu
from harness.result import Outcome
from harness.runner import ScenarioRun
from harness.scenario import (
    Scenario,
    ScenarioError,
)

# --- scenario files as tests --------------------------------------------------------------------


def _is_scenario_file(path: Path) -> bool:
    """A TOML file with [[process]] tables: others (pyproject.toml, say) are none of ours."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return False
    try:
        data = tomllib.loads(text)
    except ValueError:
        # Unreadable TOML that looks like a scenario is collected, to report its error.
        return "[[process]]" in text
    return isinstance(data.get("process"), list)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix == ".toml" and _is_scenario_file(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    """A scenario file: one test, run under the session's backend."""

    def collect(self) -> Iterator[ScenarioItem]:
        try:
            loaded = scenario_files.load(self.path)
        except ScenarioError as exc:
            raise self.CollectError(f"invalid scenario file:\n{exc}") from None
        yield ScenarioItem.from_parent(self, name=loaded.name, scenario=loaded)


class ScenarioFailed(Exception):
    """The scenario did not end as it expects; the message says why."""


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        # -m criu selects these too; and they need CRIU like any test with the marker.
        self.add_marker("criu")
        # A scenario that expects CRIU to fail is a test that expects it: criu_xfail.
        xfail.expect(self, scenario.expectation(scenario.plan))

    def runtest(self) -> None:
        settings = self.config.stash[SETTINGS]
        backend = require_criu(settings)
        result = ScenarioRun(self.scenario, backend, keep=settings.keep,
                             isolation=settings.isolation).run()
        self.stash[RESULT] = result
        record_properties(self.user_properties, result)
        if result.outcome is Outcome.SKIPPED:  # it needs a CRIU feature this machine lacks
            pytest.skip(result.reason)
        if not result.ok:  # xfailed is: criu_xfail reports it so
            raise ScenarioFailed(f"{self.scenario.name}: {result.outcome}: {result.reason}")

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        if isinstance(excinfo.value, (ScenarioFailed, HarnessError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"scenario {self.scenario.name}"


