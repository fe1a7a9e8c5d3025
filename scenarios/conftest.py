"""The built-in scenario files, run as tests in this repository's own suite.

The atlas's own (atlas/, every IPC mechanism) run in full in the nightly job (`criu-harness
atlas`, `matrix`); the suite runs a sample of them (tests/integration/test_atlas.py), and
`pytest scenarios/atlas` runs them all. Their run directories go to pytest's temporary directory, as every other test's do
(tests/conftest.py): a failing scenario keeps its evidence there, not in /tmp. Scenario files
are plugin items, which take no fixtures, so this is done around each item's call.
"""

from __future__ import annotations

import tempfile
from collections.abc import Generator

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    base = item.config._tmp_path_factory.mktemp("run")  # type: ignore[attr-defined]
    old = tempfile.tempdir
    tempfile.tempdir = str(base)
    try:
        yield
    finally:
        tempfile.tempdir = old


collect_ignore = ["atlas"]
