"""Reaping: collecting the exit status of processes that have ended, so their pids are free.

A zombie keeps its pid, and ``criu restore`` needs the very pid a dumped task had: every task
CRIU killed at the dump must be collected before the restore. The harness is a child
subreaper, so a dumped tree's orphans (and restored tasks) end up its children to collect.
Only the pids asked for are ever waited for: ``waitpid(-1)`` would also steal the exit status
of other children of this process, such as a CRIU run by a caller's own code.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

import psutil

from harness.errors import WorkloadError
from harness.waiting import poll

__all__ = ["Reaped", "become_subreaper", "reap", "reap_zombies"]

PR_SET_CHILD_SUBREAPER = 36

# How long one psutil.wait_procs round may block. A task that is not yet this process's child
# (its dying parent still holds it) becomes one without waking that wait: this bounds how
# late such a zombie is collected.
ROUND_S = 0.005


def become_subreaper() -> None:
    """Make this process the reaper of its orphaned descendants.

    ``criu restore`` detaches the restored tree; without this it would be reparented to PID 1
    and the harness could neither wait for it nor collect its exit status.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise WorkloadError(f"prctl(PR_SET_CHILD_SUBREAPER) failed: {os.strerror(err)}")


@dataclass
class Reaped:
    """What a reap found: the exit code of each pid that is gone, and the pids still there."""

    # None: not this process's child (someone else collected it), or gone already.
    exit_codes: dict[int, int | None] = field(default_factory=dict)
    alive: list[int] = field(default_factory=list)


def reap(pids: Iterable[int], timeout: float) -> Reaped:
    """Wait up to timeout for every pid to end; collect those that are this process's children.

    A pid that is not (or not yet) this process's child is waited for until it is gone, and
    collected if it becomes one meanwhile: the orphan of a dumped tree is reparented to the
    harness only when its parent dies.
    """
    result = Reaped()
    waiting: list[psutil.Process] = []
    for pid in pids:
        try:
            waiting.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            result.exit_codes[pid] = None

    def one_round() -> list[psutil.Process]:
        gone, alive = psutil.wait_procs(waiting, timeout=ROUND_S)
        for proc in gone:
            code = getattr(proc, "returncode", None)  # set by wait_procs
            result.exit_codes[proc.pid] = None if code is None else int(code)
        waiting[:] = alive
        return alive

    poll(one_round, lambda alive: not alive, timeout=timeout, interval=0)
    result.alive = sorted(p.pid for p in waiting)
    return result


def reap_zombies(sessions: Collection[int]) -> list[int]:
    """Collect this process's zombie children that belong to one of sessions (the workloads'
    descendants reparented to the harness), and no others; return their pids."""
    zombies = []
    for child in psutil.Process().children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE and os.getsid(child.pid) in sessions:
                zombies.append(child)
        except (OSError, psutil.Error):
            continue
    gone, _ = psutil.wait_procs(zombies, timeout=0)
    return sorted(p.pid for p in gone)
