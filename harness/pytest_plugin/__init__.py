"""The pytest plugin: migrate your own programs from a test, and run scenario files as tests.

A thin front over the core, like the command line: the ``migration`` fixture builds a
:class:`~harness.scenario.Scenario` in memory and runs it through
:class:`~harness.runner.ScenarioRun`; ``pytest scenarios/`` runs each scenario file the same way.
Registered through the ``pytest11`` entry point, so installing criu-harness enables it. Each
concern is a module of its own; pytest finds the hooks and fixtures here, where they are
gathered, and expected CRIU failures (:mod:`.xfail`, like pytest's skipping.py) are a plugin of
their own, which this one brings in.
"""

from __future__ import annotations

from harness.pytest_plugin.collection import ScenarioItem, pytest_collect_file
from harness.pytest_plugin.fixture import MigrationFixture, SpawnedProcess, migration
from harness.pytest_plugin.reporting import pytest_runtest_makereport
from harness.pytest_plugin.settings import (
    CriuSettings,
    criu_settings,
    criu_unavailable,
    pytest_addoption,
    pytest_configure,
    pytest_runtest_setup,
)

pytest_plugins = ["harness.pytest_plugin.xfail"]

__all__ = [
    "CriuSettings",
    "MigrationFixture",
    "ScenarioItem",
    "SpawnedProcess",
    "criu_settings",
    "criu_unavailable",
    "migration",
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_configure",
    "pytest_runtest_makereport",
    "pytest_runtest_setup",
]
