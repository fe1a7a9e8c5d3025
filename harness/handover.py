"""Safe hand-over: the source stays, stopped, until the destination is restored and verified.

With ``--safe-handover`` a dump leaves its tasks stopped (``--leave-stopped``) instead of
killing them, and the restore gives the copy new pids in new PID namespaces (it needs
``--isolation ns``). Only once every role is restored, alive, stopped and looked at are the
sources killed and the copies resumed. If a restore fails, the copies (and whatever a failed
restore left in the role's cgroup) are killed and the sources resumed: a failed restore loses
no workload.

One thing of the source's does not survive a restore beside it: the names of its bound unix
sockets. CRIU's restore unlinks a socket file found where it is to bind one (sk-unix.c,
unlink_sk), so after a failed restore the resumed source would be bound to a name that no
longer leads to it, and its peers' messages would go nowhere. The hand-over parks a second
hard link to each such socket file first, and on a failure puts it back in place.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from harness import reaping
from harness.errors import CriuError
from harness.overlap import together
from harness.process import Workload
from harness.proctree import tree_pids
from harness.record import MigrationRecord, phase
from harness.result import Step
from harness.sockets import unix_paths

if TYPE_CHECKING:
    from harness.migration import Migration

__all__ = ["PARKED_SUFFIX", "Parked", "hand_over", "kill", "park"]

PARKED_SUFFIX = ".criu-harness-parked"


@dataclass
class Parked:
    """Second links to the source's bound socket files, as (name, parked name), each reached
    through the owning process's root (its mount namespace may be its own)."""

    links: list[tuple[str, str]] = field(default_factory=list)

    def put_back(self) -> None:
        """The source's sockets under their names again (over what a failed restore left)."""
        for path, parked in self.links:
            try:
                # rename() of a link onto another link of the same file does nothing at all.
                if os.path.exists(path) and os.path.samefile(parked, path):
                    os.unlink(parked)
                else:
                    os.rename(parked, path)
            except OSError:
                pass
        self.links.clear()

    def drop(self) -> None:
        """The hand-over is done: the copies own the names now."""
        for _, parked in self.links:
            try:
                os.unlink(parked)
            except OSError:
                pass
        self.links.clear()


def park(pids: Iterable[int]) -> Parked:
    """Park a link to every unix socket file the processes are bound to (while they live)."""
    parked = Parked()
    seen: set[str] = set()
    for pid in pids:
        root = f"/proc/{pid}/root"
        for name in sorted(unix_paths(pid)):
            path = f"{root}{name}"
            key = os.path.realpath(path)
            if key in seen:
                continue
            seen.add(key)
            spare = f"{path}{PARKED_SUFFIX}"
            try:
                try:
                    os.link(path, spare)
                except FileExistsError:  # a previous cycle's, never dropped
                    os.unlink(spare)
                    os.link(path, spare)
            except OSError:
                continue  # gone already, or not a file this process can reach: nothing to keep
            parked.links.append((path, spare))
    return parked


def kill(pids: Iterable[int], timeout: float = 10.0) -> list[int]:
    """SIGKILL the processes (a PID namespace's init takes its namespace with it) and collect
    them; the pids still there after timeout."""
    pids = list(pids)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return reaping.reap(pids, timeout).alive


def hand_over(m: Migration, record: MigrationRecord, workloads: dict[str, Workload]) -> None:
    """Restore every role beside its stopped source (at once under an overlapped plan),
    verify each copy, then kill the sources and resume the copies in the plan's order; if
    anything fails, kill the copies and resume the sources."""
    roles = m.plan.restore
    # (Not with a transport that holds the source: lazy's ends with its transfer.)
    sources = {role: m.sources.get(role, []) for role in roles}
    parked = park(pid for pids in sources.values() for pid in pids)
    restored: dict[str, int] = {}

    def restore(role: str) -> None:
        with phase(record, Step.RESTORE, role):
            call = m.transport.restore(m.backend, m.options_for(role, "restore"), record.calls)
            assert call.restored_pid is not None
            restored[role] = call.restored_pid

    errors: dict[str, CriuError] = {}
    if m.plan.overlap:
        errors = together([(role, partial(restore, role)) for role in roles])
    else:
        for role in roles:
            try:
                restore(role)
            except CriuError as err:
                errors[role] = err
                break
    problems = []
    if not errors:
        for role in roles:
            copy = Workload(name=role, argv=[], run_dir=workloads[role].run_dir,
                            pid=restored[role])
            m.look_after(record, role, copy)
            if not copy.alive():
                problems.append(f"{role}: restored as pid {restored[role]}, then gone")
    if errors or problems:
        _hand_back(m, record, workloads, sources, restored, parked)
        first = next((errors[r] for r in roles if r in errors), None)
        record.error = first or CriuError(action="restore", pid=None, log_path=None,
                                          signature="; ".join(problems))
        record.failed_step = Step.RESTORE
        return
    parked.drop()
    for role in roles:
        if role in m.sources:
            with phase(record, Step.REAP, role):
                kill(m.sources.pop(role))
        workloads[role].adopt(restored[role])
        m.restored.add(role)
    for role in roles:
        m.resume(record, role, workloads[role])

def _hand_back(
    m: Migration,
    record: MigrationRecord,
    workloads: dict[str, Workload],
    sources: dict[str, list[int]],
    restored: dict[str, int],
    parked: Parked,
) -> None:
    """The hand-over failed: kill every copy (and what a failed restore left in the role's
    cgroup), give the sources their socket names back and let them run."""
    for role in m.plan.restore:
        with phase(record, Step.ROLLBACK, role) as step:
            keep = set(sources[role])
            copies = set(tree_pids(restored[role])) if role in restored else set()
            copies |= {pid for pid in workloads[role].members() if pid not in keep}
            if kill(copies):
                step.ok = False
    parked.put_back()
    for role in m.plan.restore:
        workloads[role].thaw()
    m.sources.clear()
    record.handed_back = True
