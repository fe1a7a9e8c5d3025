"""CRIU failing on purpose, on real processes: a CRIU that hangs is killed at its deadline, an
injected fault (CRIU_FAULT) fails the dump, and either way the workload is thawed and goes on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from runs import PairFactory

from harness.criu import get_backend
from harness.criu.backend import Backend
from harness.criu.options import CriuOptions
from harness.migration import Migration, MigrationRecord
from harness.plan import get_plan
from harness.process import Workload
from harness.progress import EventProgress

pytestmark = pytest.mark.criu

HARNESS = [sys.executable, "-m", "harness.cli"]
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
REAL_CRIU = "/usr/local/sbin/criu"


@pytest.fixture
def hanging_criu(tmp_path: Path) -> Path:
    """CRIU, except that a dump (cli) or an RPC session (rpc: `criu swrk`) never ends."""
    real = get_backend("cli").criu.path
    path = tmp_path / "hanging-criu"
    path.write_text(
        "#!/bin/sh\n"
        'case "$1" in dump|swrk) exec sleep 1000 ;; esac\n'
        f'exec {real} "$@"\n'
    )
    path.chmod(0o755)
    return path


def migrate(backend: Backend, workloads: dict[str, Workload], images: Path) -> MigrationRecord:
    plan = get_plan("server-first").for_roles(list(workloads))

    def options_for(role: str, action: str) -> CriuOptions:
        return CriuOptions(images / role, log_file=f"{action}.log")

    return Migration(backend, plan, options_for).run(workloads)


def goes_on(workloads: dict[str, Workload], progress: EventProgress) -> None:
    """Every workload runs (not stopped) and the echo loop answers again."""
    for name, w in workloads.items():
        assert w.alive() and w.status() != psutil.STATUS_STOPPED, (name, w.status())
    progress.wait(time.time(), 20, 15)


def harness(*args: str, tmpdir: Path, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TMPDIR": str(tmpdir), **(env or {})}, check=False)


def scenario_file(tmp_path: Path, criu_table: str) -> Path:
    """dgram-echo with a [criu...] table of its own."""
    text = (SCENARIOS / "dgram-echo.toml").read_text()
    path = tmp_path / "dgram-echo-criu.toml"
    path.write_text(text.replace("[expect]\n", f"{criu_table}\n\n[expect]\n", 1))
    return path


# --- a CRIU that hangs ------------------------------------------------------------------------


def test_a_hanging_criu_is_killed_and_the_workload_goes_on(
    tmp_path: Path, backend_name: str, hanging_criu: Path, dgram_pair: PairFactory
) -> None:
    backend = get_backend(backend_name, str(hanging_criu), timeout=2)
    with dgram_pair(tmp_path) as (workloads, progress):
        started = time.monotonic()
        record = migrate(backend, workloads, tmp_path / "images")
        took = time.monotonic() - started
        assert record.error is not None and record.failed_step == "dump"
        assert record.error.signature == "timed out after 2 s"
        assert record.error.signal == signal.SIGKILL
        assert 2 <= took < 6, took
        [call] = record.calls
        assert call.criu_options["timeout"] == 2 and call.error
        assert not any(w.status() == psutil.STATUS_STOPPED for w in workloads.values())
        goes_on(workloads, progress)
    # The hanging CRIU (the script's `sleep 1000`) was killed, not left behind.
    assert not any(p.info["cmdline"] == ["sleep", "1000"] and p.ppid() == os.getpid()
                   for p in psutil.process_iter(["cmdline"]))


def test_a_run_with_a_hanging_criu_ends_soon_after_the_timeout(
    tmp_path: Path, backend_name: str, hanging_criu: Path
) -> None:
    started = time.monotonic()
    proc = harness("run", "dgram-echo", "--backend", backend_name, "--criu-binary",
                   str(hanging_criu), "--criu-timeout", "2", "--report", str(tmp_path / "r"),
                   tmpdir=tmp_path)
    took = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "criu: timed out after 2 s" in proc.stdout
    assert took < 2 + 10, took  # start, warm-up and clean-up: seconds, not the 1000 s sleep
    [result] = json.loads((tmp_path / "r" / "results.json").read_text())["scenarios"]
    [call] = result["cycles"][0]["calls"]
    assert call["criu_options"]["timeout"] == 2
    assert "timed out after 2 s" in call["error"]


def test_the_timeout_of_a_scenario_file(tmp_path: Path, hanging_criu: Path) -> None:
    path = scenario_file(tmp_path, "[criu.dump]\ntimeout = 1.5")
    started = time.monotonic()
    proc = harness("run", str(path), "--criu-binary", str(hanging_criu), tmpdir=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "criu: timed out after 1.5 s" in proc.stdout
    assert time.monotonic() - started < 1.5 + 10


# --- injected faults --------------------------------------------------------------------------


def test_an_early_dump_fault_fails_the_dump_and_the_workload_goes_on(
    tmp_path: Path, backend_name: str, dgram_pair: PairFactory
) -> None:
    backend = get_backend(backend_name, fault=1)
    with dgram_pair(tmp_path) as (workloads, progress):
        record = migrate(backend, workloads, tmp_path / "images")
        assert record.error is not None and record.failed_step == "dump"
        # FI_DUMP_EARLY: CRIU kills itself once its parasite is in ("sudden detach").
        assert record.error.signal == signal.SIGKILL
        assert record.error.signature == "killed by SIGKILL after: fault: CRIU sudden detach"
        [call] = record.calls
        assert call.criu_options["fault"] == 1
        assert call.options["env"] == {"CRIU_FAULT": "1"}
        goes_on(workloads, progress)


def test_a_fault_from_the_command_line_is_recorded(tmp_path: Path, backend_name: str) -> None:
    proc = harness("run", "dgram-echo", "--backend", backend_name, "--criu-fault", "1",
                   "--report", str(tmp_path / "r"), tmpdir=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "criu: killed by SIGKILL after: fault: CRIU sudden detach" in proc.stdout
    [result] = json.loads((tmp_path / "r" / "results.json").read_text())["scenarios"]
    [call] = result["cycles"][0]["calls"]
    assert call["criu_options"]["fault"] == 1 and call["options"]["env"] == {"CRIU_FAULT": "1"}
    # The kept run's own record of the call says so too.
    calls = json.loads((Path(result["artifacts"]) / "criu-calls.json").read_text())
    assert calls[0]["criu_options"]["fault"] == 1


def test_a_fault_of_a_scenario_file_applies_to_its_action(tmp_path: Path) -> None:
    # A restore-only fault on dump does nothing: the dump and restore succeed, and the
    # restore's record carries it.
    path = scenario_file(tmp_path, "[criu.restore]\nfault = 2")
    proc = harness("run", str(path), "--backend", "cli", "--report", str(tmp_path / "r"),
                   tmpdir=tmp_path)
    [result] = json.loads((tmp_path / "r" / "results.json").read_text())["scenarios"]
    calls = result["cycles"][0]["calls"]
    assert [(c["action"], c["criu_options"]["fault"]) for c in calls][:2] == [
        ("dump", None), ("dump", None)
    ]
    restores = [c for c in calls if c["action"] == "restore"]
    assert restores and all(c["options"]["env"] == {"CRIU_FAULT": "2"} for c in restores)
    # FI_RESTORE_ROOT_ONLY fails the restore.
    assert proc.returncode == 1 and "restore" in result["reason"], proc.stdout
