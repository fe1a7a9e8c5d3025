"""A failing run is reproducible: its bundle, unpacked elsewhere, fails the same way again.

The failure is a real one: a reader following a growing log (``tail -f``) is migrated while
the writer runs on; CRIU recorded the log's size at dump and refuses to restore the reader
once the file has grown (GROWING_LOG below). Nothing changes the log after the run, so every
later restore from the same images must fail with the very same line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness import scenario
from harness.criu import get_backend
from harness.result import ScenarioResult
from harness.rundir import PREFIX
from harness.runner import ScenarioRun

pytestmark = pytest.mark.criu

HARNESS = [sys.executable, "-m", "harness.cli"]
# Written to a temporary file by the test, not kept as a .toml under tests/: the pytest plugin
# would collect it as a scenario test of its own, one that fails by design.
GROWING_LOG = r'''
# A reader following a log that another process keeps writing (think `tail -f app.log`),
# migrated while the writer goes on. CRIU records the size of every regular file a task has
# open for reading and refuses to restore it once the file has changed: the restore fails,
# and fails again, the same way, for as long as the file stays as it is. The test of
# `criu-harness bundle` and `criu-harness restore` reproduces this failure from a bundle.
name = "growing-log"
description = "a tail -f of a log that grows during the migration: the restore fails"
plan = "no-freeze"  # the writer runs on while the reader is dumped: the log outgrows its image

[[process]]
role = "reader"
argv = ["{python}", "-c", """
import sys, time
open(sys.argv[1], "a").close()
log = open(sys.argv[1])  # read-only: CRIU checks its size on restore
print("following", sys.argv[1], flush=True)
while True:
    line = log.readline()
    if line:
        print("read", line.strip(), flush=True)
    else:
        time.sleep(0.005)
""", "{run_dir}/app.log"]
ready = { log = "{run_dir}/reader.stdout", pattern = "^following" }

[[process]]
role = "writer"
argv = ["{python}", "-c", """
import sys, time
with open(sys.argv[1], "a", buffering=1) as log:  # append-only: CRIU skips its size check
    n = 0
    while True:
        n += 1
        log.write(f"{n}\\n")
        time.sleep(0.005)
""", "{run_dir}/app.log"]
ready = { log = "{run_dir}/app.log", pattern = "^1$" }

[expect]
outcome = "migrates"  # what one would hope for; CRIU says otherwise

[verify]
log = "{run_dir}/reader.stdout"
pattern = "^read"
min_progress = 20
deadline = 15
'''


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=120, check=False)


def _remove_kept(result: ScenarioResult) -> None:
    # The harness's own directory, kept in place (its images name files there by absolute path).
    path = Path(result.artifacts)
    if result.artifacts and path.name.startswith(PREFIX) and path.is_dir():
        shutil.rmtree(path)


def _image_pids(summary: list[dict[str, Any]]) -> list[int]:
    return [int(p["pid"]) for s in summary for p in s["processes"]]


def test_bundle_and_restore_reproduce_a_failed_restore(tmp_path: Path, backend_name: str) -> None:
    scenario_file = tmp_path / "growing-log.toml"
    scenario_file.write_text(GROWING_LOG)
    result = ScenarioRun(scenario.load(scenario_file), get_backend(backend_name)).run()
    try:
        assert result.outcome == "failed", result.reason
        assert result.criu_error and "has bad size" in result.criu_error, result.reason
        [cycle] = result.cycles
        assert [(c.action, c.error is not None) for c in cycle.calls] == [
            ("dump", False), ("dump", False), ("restore", True),
        ]
        run = Path(result.artifacts)
        for name in ("result.json", "criu-calls.json", "images-summary.json", "versions.json",
                     "signatures.txt", "reader.stdout", "writer.stdout"):
            assert (run / name).is_file(), name
        highlighted = (run / "images" / "reader" / "restore.log.highlighted.txt").read_text()
        assert ">>> " in highlighted and f"{result.criu_error}   <== signature" in highlighted
        calls = json.loads((run / "criu-calls.json").read_text())
        assert [c["role"] for c in calls] == ["reader", "writer", "reader"]
        assert calls[2]["signature"] == result.criu_error
        assert ("argv" in calls[2]["options"]) == (backend_name == "cli")
        summary = json.loads((run / "images-summary.json").read_text())
        reader = next(s for s in summary if s["images"] == "images/reader")
        [proc] = reader["processes"]
        assert any(f["kind"] == "REG" and f["path"] == str(run / "app.log") for f in proc["fds"])
        assert any(m["path"] == "[heap]" for m in proc["maps"])

        bundled = harness("bundle", str(run), "-o", str(tmp_path / "failure.tar.gz"))
        assert bundled.returncode == 0, bundled.stderr
        assert bundled.stdout.strip() == str(tmp_path / "failure.tar.gz")

        unpacked = tmp_path / "unpacked"
        with tarfile.open(tmp_path / "failure.tar.gz") as tar:
            assert all(not m.name.startswith("/") and ".." not in m.name for m in tar.getmembers())
            assert not any(m.name.endswith(".sock") for m in tar.getmembers())
            tar.extractall(unpacked, filter="data")
        copy = unpacked / run.name
        assert (copy / "images" / "reader" / "pstree.img").is_file()

        # From the unpacked copy, through the other backend too: same options, same failure.
        for backend in (backend_name, "cli" if backend_name == "rpc" else "rpc"):
            retried = harness("restore", str(unpacked), "--backend", backend)
            assert retried.returncode == 1, retried.stdout + retried.stderr
            assert f"signature: {result.criu_error}\n" in retried.stdout, retried.stdout
            assert "reproduced: yes" in retried.stdout
            assert str(copy / "images" / "reader") in retried.stdout  # the copy, not the run
        assert not any(psutil.pid_exists(pid) for pid in _image_pids(summary))
    finally:
        _remove_kept(result)


def test_restore_of_a_kept_passing_run_succeeds_and_leaves_nothing(backend_name: str) -> None:
    result = ScenarioRun(scenario.find("dgram-echo"), get_backend(backend_name), keep="always").run()
    try:
        assert result.outcome == "passed", result.reason
        run = Path(result.artifacts)
        pids = _image_pids(json.loads((run / "images-summary.json").read_text()))
        assert len(pids) == 2
        retried = harness("restore", str(run))
        assert retried.returncode == 0, retried.stdout + retried.stderr
        assert retried.stdout.count("killed and reaped") == 2
        assert not any(psutil.pid_exists(pid) for pid in pids)
        # The run's own restore.log is evidence: a retry writes a log of its own.
        assert (run / "images" / "server" / "restore-retry-1.log").is_file()
    finally:
        _remove_kept(result)


def test_restore_with_nothing_to_restore(tmp_path: Path) -> None:
    (tmp_path / "images" / "server").mkdir(parents=True)
    out = harness("restore", str(tmp_path))
    assert out.returncode == 2 and "no complete images" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_restore_of_a_kept_run_with_a_criu_timeout(tmp_path: Path) -> None:
    """--criu-timeout bounds the retried restore: a CRIU that hangs is killed at it, and the
    retry says so (a hanging swrk here: the rpc backend's, as the run used)."""
    result = ScenarioRun(scenario.find("dgram-echo"), get_backend("rpc"), keep="always").run()
    try:
        assert result.outcome == "passed", result.reason
        real = get_backend("cli").criu.path
        hanging = tmp_path / "hanging-criu"
        hanging.write_text('#!/bin/sh\ncase "$1" in swrk) exec sleep 1000 ;; esac\n'
                           f'exec {real} "$@"\n')
        hanging.chmod(0o755)
        retried = harness("restore", result.artifacts, "--role", "server", "--criu-binary",
                          str(hanging), "--criu-timeout", "1")
        assert retried.returncode == 1, retried.stdout + retried.stderr
        assert "timed out after 1 s" in retried.stdout
        bad = harness("restore", result.artifacts, "--criu-timeout", "0")
        assert bad.returncode == 2 and "--criu-timeout" in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    finally:
        _remove_kept(result)
