"""The GPU echo pair from a user's test, through the migration fixture: migrated where the
cuda feature is present, skipped naming the missing piece (CI=true included) where it is not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import preflight
from harness.criu import get_backend

pytest_plugins = ["pytester"]

GPU_TEST = """
import sys

GPU = [sys.executable, "-m", "harness.workloads.gpu_dgram"]


def test_gpu_pair(migration):
    ssock, csock = migration.path("s.sock"), migration.path("c.sock")
    events = migration.path("client.events")
    migration.spawn([*GPU, "server", "--socket", ssock, "--gpu-mb", "16"],
                    role="server", ready_socket=ssock, ready_timeout=120)
    migration.spawn([*GPU, "client", "--socket", csock, "--server", ssock, "--events", events],
                    role="client", progress_events=events)
    result = migration.run("server-running", criu={"plugins": ["cuda"]}, features=["cuda"])
    assert result.outcome == "passed" and result.messages_lost == 0
"""


@pytest.mark.criu
def test_the_gpu_pair_from_the_fixture(
    pytester: pytest.Pytester, backend_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")  # a missing GPU is a reason to skip, even under CI
    pytester.makepyfile(GPU_TEST)
    result = pytester.runpytest_subprocess("-rs", f"--criu-backend={backend_name}")
    cuda = preflight.probe(get_backend("cli").criu.path, "cuda")
    if cuda.available:
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines([f"*needs CRIU feature(s) missing here: cuda ({cuda.detail})*"])


def test_the_docs_example_is_the_tested_one_verbatim() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "gpu.md").read_text()
    [example] = re.findall(r"```python\n(.*?)```", docs, re.S)
    assert example in GPU_TEST
