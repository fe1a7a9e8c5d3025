"""`criu-harness run -j N`: scenarios side by side, each in a process of its own; with
--isolation ns even a program with a fixed path under /tmp runs beside itself; a Ctrl-C ends
every run and leaves nothing behind."""

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

from harness import cli

pytestmark = pytest.mark.criu

# The datagram pair with the server bound to a fixed path, /tmp/criu-harness-fixed.sock: two at
# once collide on it as host processes; each run's workloads have a /tmp of their own with ns.
# Readiness looks at the host's side of that /tmp ({run_dir}/tmp).
FIXED = """
name = "fixed-path"
description = "dgram pair whose server binds a fixed path under /tmp"
[[process]]
role = "server"
argv = ["{python}", "-m", "harness.workloads.dgram", "server",
        "--socket", "/tmp/criu-harness-fixed.sock", "--events", "{run_dir}/server.events"]
ready = { socket = "{run_dir}/tmp/criu-harness-fixed.sock" }
[[process]]
role = "client"
argv = ["{python}", "-m", "harness.workloads.dgram", "client",
        "--socket", "{run_dir}/client.sock", "--server", "/tmp/criu-harness-fixed.sock",
        "--events", "{run_dir}/client.events", "--interval", "0.01", "--timeout", "1.0"]
ready = { events = "{run_dir}/client.events" }
[expect]
outcome = "migrates"
[verify]
events = "{run_dir}/client.events"
"""

BUILTINS = ["dgram-echo", "stream-echo", "stream-tree", "native-dgram"]


def test_eight_scenarios_four_at_once_in_ns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    status = cli.main(["run", "-j", "4", "--isolation", "ns", "--report", str(tmp_path),
                       *BUILTINS, *BUILTINS])
    took = time.monotonic() - started
    out = capsys.readouterr().out
    assert status == 0, out
    assert "8 of 8 scenario(s) as expected" in out
    data = json.loads((tmp_path / "results.json").read_text())
    # In the order asked for, whatever order they ended in.
    assert [s["name"] for s in data["scenarios"]] == [*BUILTINS, *BUILTINS]
    assert all(s["isolation"] == "ns" for s in data["scenarios"])
    assert took < 60, took


def test_fixed_paths_side_by_side_with_ns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fixed = tmp_path / "fixed-path.toml"
    fixed.write_text(FIXED)
    status = cli.main(["run", "-j", "2", "--isolation", "ns", str(fixed), str(fixed)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.count("passed") == 2
    assert not Path("/tmp/criu-harness-fixed.sock").exists()  # never on the host's /tmp


def test_ctrl_c_ends_every_parallel_run(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("criu-harness")
    proc = subprocess.Popen(
        [str(script), "run", "-j", "3", "--iterations", "50", "--isolation", "ns",
         "dgram-echo", "dgram-echo", "stream-tree"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )

    def workloads() -> list[psutil.Process]:
        return [p for p in psutil.process_iter(["cmdline"])
                if str(tmp_path) in " ".join(p.info["cmdline"] or [])
                and "harness.workloads" in " ".join(p.info["cmdline"] or [])]

    deadline = time.monotonic() + 30
    while len({p.info["cmdline"][-1] for p in workloads()}) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # in the middle of the migrations
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "interrupted" in err and "Traceback" not in err, err
    assert [p for p in workloads() if p.status() != psutil.STATUS_ZOMBIE] == []
