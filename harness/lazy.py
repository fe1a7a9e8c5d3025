"""The lazy-pages feature, gated by a trial: ``criu check --feature uffd`` says the kernel has
userfaultfd, not that a lazy migration works here (on these machines it fails until
fs.pipe-max-size is raised, and CRIU's own message does not say so). So ``criu-harness check``
and every run with ``--transport lazy`` first migrate a tiny process lazily, the way such runs
do (harness.transport, across the veth pair, fs.pipe-max-size raised); where it fails, the
reason is CRIU's own signature."""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.criu import CriuCall, CriuOptions, get_backend
from harness.errors import HarnessError
from harness.namespace import Namespaces
from harness.netns import VethPair
from harness.proctree import tree_pids
from harness.reaping import reap
from harness.supervisor import Supervisor
from harness.sysctl import raised_pipe_max_size
from harness.transport import Lazy
from harness.waiting import wait_for

__all__ = ["LazyCheck", "check"]

TRIAL_TIMEOUT_S = 30.0
# Keeps 4 MiB of its own data and prints its sum every 20 ms: going on with the same sum after
# the restore shows its pages came across.
_TRIAL = """
import sys, time
data = bytes(range(256)) * (4 * 2**20 // 256)
total = sum(data[::4096])
while True:
    print(total, flush=True)
    time.sleep(0.02)
"""


@dataclass(frozen=True)
class LazyCheck:
    available: bool
    detail: str


def check(criu_binary: str) -> LazyCheck:
    """Migrate a tiny process lazily; say what failed, in CRIU's words."""
    try:
        return _trial(criu_binary)
    except HarnessError as exc:
        return LazyCheck(False, f"trial lazy migration failed: {exc}")


def _trial(criu_binary: str) -> LazyCheck:
    changed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="criu-harness-lazy-") as tmp, \
            Supervisor("lazy-trial") as supervisor, \
            raised_pipe_max_size(say=changed.append), \
            VethPair(supervisor.cgroup) as pair:
        run = Path(tmp)
        out = run / "trial.stdout"
        workload = supervisor.spawn("trial", [sys.executable, "-c", _TRIAL], run,
                                    namespaces=Namespaces(mount=False))

        def sums() -> list[str]:
            return out.read_text().split() if out.exists() else []

        wait_for(sums, timeout=10.0, interval=0.01)
        expected = sums()[0]
        backend = get_backend("cli", criu_binary, timeout=TRIAL_TIMEOUT_S)
        lazy = Lazy(backend.criu.path, pair.source, pair.destination, run, TRIAL_TIMEOUT_S)
        calls: list[CriuCall] = []
        try:
            workload.freeze()
            images = run / "images"
            lazy.dump(backend, workload.pid, CriuOptions(images, log_file="dump.log"), calls)
            held = tree_pids(workload.pid)
            call = lazy.restore(backend, CriuOptions(images, log_file="restore.log"), calls)
            assert call.restored_pid is not None
            workload.adopt(call.restored_pid)
            seen = len(sums())
            workload.thaw()
            failures = lazy.finish()
            reap(held, timeout=10.0)
        finally:
            lazy.close()
        if failures:
            raise failures[0]
        after = wait_for(sums, lambda s: len(s) > seen + 2, timeout=10.0, interval=0.01)
        if after[-1] != expected:
            return LazyCheck(False, f"the trial process's memory changed across the lazy "
                                    f"migration ({expected} -> {after[-1]})")
    raised = f"; {changed[0]}" if changed else ""
    return LazyCheck(True, f"a trial process migrated lazily over a veth pair{raised}")
