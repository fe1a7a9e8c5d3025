"""Scenarios: which processes to start, how to migrate them, and what must happen.

A scenario is a TOML file (the built-in ones live in ``scenarios/``): :mod:`.model` holds what a
scenario is, :mod:`.loader` reads and validates the files, :mod:`.checker` points each problem
at its line.
"""

from __future__ import annotations

from harness.scenario.loader import (
    SCENARIO_DIR,
    ScenarioError,
    builtin_paths,
    find,
    load,
)
from harness.scenario.model import (
    CRIU_FLAGS,
    CRIU_KEYS,
    PLACEHOLDERS,
    Build,
    CriuSpec,
    Expectation,
    ProcessSpec,
    Scenario,
    Verify,
)

__all__ = [
    "CRIU_FLAGS",
    "CRIU_KEYS",
    "PLACEHOLDERS",
    "SCENARIO_DIR",
    "Build",
    "CriuSpec",
    "Expectation",
    "ProcessSpec",
    "Scenario",
    "ScenarioError",
    "Verify",
    "builtin_paths",
    "find",
    "load",
]
