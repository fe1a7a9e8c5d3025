"""CRIU broken from outside, on real processes, through both backends: killed with SIGKILL in
the middle of a dump (the workload is thawed and goes on), and images damaged between the dump
and the restore, in a run (a CRIU action script) and before `criu-harness restore` of a kept
run (a clear signature). Whatever happens, nothing of the run is left: no process, no cgroup,
no mount.

Seen here with CRIU 4.2.1: a damaged pstree, core or pagemap image fails the restore with a
line naming the file; a truncated pages image does not fail it at all: CRIU's restorer reads
the missing pages again and again (logging two lines each time, some 40 MB/s), so only the
deadline ends it, and CRIU killed then leaves its cgroup yard mounted in the images directory
unless the harness unmounts it.
"""

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
from runs import PairFactory, of_run

from harness import cgroup, scenario
from harness.criu import get_backend, yard
from harness.criu.options import CriuOptions
from harness.migration import Migration
from harness.plan import get_plan
from harness.verification import Accounting

pytestmark = pytest.mark.criu

HARNESS = [sys.executable, "-m", "harness"]
# At post-dump CRIU has written every image and still holds the tasks (seized, stopped):
# the action script kills the criu that runs it (its parent, or its parent's parent when a
# shell stands between them).
KILL_CRIU = """#!/bin/sh
[ "$CRTOOLS_SCRIPT_ACTION" = post-dump ] || exit 0
p=$PPID
while [ "$(cat /proc/$p/comm)" != criu ]; do p=$(cut -d' ' -f4 /proc/$p/stat); done
kill -KILL "$p"
"""
# At pre-restore CRIU has read the process tree but not the tasks' own images yet.
DAMAGE = """#!/bin/sh
[ "$CRTOOLS_SCRIPT_ACTION" = pre-restore ] || exit 0
cd "$CRTOOLS_IMAGE_DIR" || exit 1
for f in {files}; do {damage}; done
"""
TRUNCATE = 'truncate -s $(( $(stat -c %s "$f") / 2 )) "$f"'
GARBAGE = 'dd if=/dev/urandom of="$f" bs=1 count=32 seek=12 conv=notrunc 2>/dev/null'


def run_cgroups(patterns: list[str]) -> list[Path]:
    """The run cgroups (``<harness pid>.<run name>``) matching these patterns."""
    top = cgroup.root()
    base = top / cgroup.BASE if top is not None else None
    if base is None or not base.is_dir():
        return []
    return sorted(p for pattern in patterns for p in base.glob(pattern))


def nothing_left(base: Path, cgroups: list[str] | None = None) -> None:
    """No process, run cgroup or CRIU mount of the runs in base (or the cgroups named)."""
    assert of_run(base) == []
    assert run_cgroups(cgroups or [f"*.{d.name}" for d in base.glob("criu-harness-*")]) == []
    assert yard.yards(base) == []


def script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o755)
    return path


def with_criu_table(tmp_path: Path, table: str) -> Path:
    """dgram-echo with a [criu...] table of its own."""
    text = scenario.find("dgram-echo").path.read_text()
    path = tmp_path / "dgram-echo-broken.toml"
    path.write_text(text.replace("[expect]\n", f"{table}\n\n[expect]\n", 1))
    return path


def harness(*args: str, tmpdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "TMPDIR": str(tmpdir)}, check=False)


def tracer(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("TracerPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no TracerPid for {pid}")


# --- CRIU killed in the middle of a dump ------------------------------------------------------


def test_criu_killed_with_sigkill_in_the_middle_of_a_dump_rolls_back(
    tmp_path: Path, backend_name: str, dgram_pair: PairFactory
) -> None:
    hook = script(tmp_path, "kill-criu.sh", KILL_CRIU)
    backend = get_backend(backend_name)
    plan = get_plan("server-first").for_roles(["server", "client"])

    def options_for(role: str, action: str) -> CriuOptions:
        extra = ("--action-script", str(hook)) if action == "dump" else ()
        return CriuOptions(tmp_path / "images" / role, log_file=f"{action}.log",
                           extra_args=extra)

    with dgram_pair(tmp_path) as (workloads, progress):
        record = Migration(backend, plan, options_for).run(workloads)
        assert record.error is not None and record.failed_step == "dump"
        assert record.error.signal == signal.SIGKILL
        assert record.error.signature is not None
        assert record.error.signature.startswith("killed by SIGKILL after: "), record.error
        # Killed with every image written: the dump is still a failure, nothing is restored.
        assert (tmp_path / "images" / "server" / "pages-1.img").exists()
        assert [c.action for c in record.calls] == ["dump"]
        for name, w in workloads.items():
            assert w.alive() and w.status() != psutil.STATUS_STOPPED, (name, w.status())
            assert tracer(w.pid) == 0, name  # CRIU's ptrace hold went with it
        progress.wait(time.time(), 20, 15)
        # Thawed and going on, with nothing lost.
        events = progress.events()
        assert events is not None
        acc = Accounting.from_events(events)
        assert (acc.messages_lost, acc.client_errors, acc.duplicates) == (0, 0, 0)
    nothing_left(tmp_path, [f"{os.getpid()}.run"])


# --- images damaged before the restore --------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "damage", "timeout", "signature"),
    [
        # A corrupt core image: CRIU says which file it could not read.
        ("core-*.img", GARBAGE, 60, "Failed unpacking object"),
        # A truncated pages image: CRIU never fails, it spins; the deadline ends it.
        ("pages-*.img", TRUNCATE, 2, "timed out after 2 s"),
    ],
    ids=["corrupt-core", "truncated-pages"],
)
def test_an_image_damaged_before_the_restore_fails_it_with_a_clear_signature_and_leaves_nothing(
    tmp_path: Path, backend_name: str, files: str, damage: str, timeout: int, signature: str
) -> None:
    hook = script(tmp_path, "damage.sh", DAMAGE.format(files=files, damage=damage))
    path = with_criu_table(
        tmp_path, f'[criu.restore]\nextra_args = ["--action-script", "{hook}"]\ntimeout = {timeout}'
    )
    # No --report: its bundle would pack the spinning restorer's log (tens of MB).
    proc = harness("run", str(path), "--backend", backend_name, tmpdir=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"criu: {signature}" in proc.stdout, proc.stdout
    # The evidence is kept where it ran: the images as damaged, and the restore's log.
    [run_dir] = tmp_path.glob("criu-harness-*")
    result = json.loads((run_dir / "result.json").read_text())
    assert result["reason"].startswith("criu restore failed: "), result["reason"]
    assert signature in result["criu_error"]
    assert (run_dir / "images" / "server" / "restore.log").is_file()
    nothing_left(tmp_path)


def test_restore_of_a_kept_run_with_a_corrupted_process_tree_says_so_and_leaves_nothing(
    tmp_path: Path, backend_name: str
) -> None:
    proc = harness("run", "dgram-echo", "--backend", backend_name, "--keep", "--report",
                   str(tmp_path / "r"), tmpdir=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [result] = json.loads((tmp_path / "r" / "results.json").read_text())["scenarios"]
    run_dir = Path(result["artifacts"])
    pstree = run_dir / "images" / "server" / "pstree.img"
    pstree.write_bytes(b"\x00" * 4 + pstree.read_bytes()[4:])  # CRIU's magic number gone
    retry = harness("restore", str(run_dir), "--role", "server", tmpdir=tmp_path)
    assert retry.returncode == 1, retry.stdout + retry.stderr
    assert "server: criu restore" in retry.stdout and ": FAILED" in retry.stdout
    [line] = [x for x in retry.stdout.splitlines() if "signature:" in x]
    assert line.endswith("Head magic doesn't match for pstree.img"), retry.stdout
    nothing_left(tmp_path)
