"""A cgroup per run: every process a workload ever starts, whatever it does with sessions and
process groups (a daemon's double fork, ``setsid``), stays in it, and so does a restored tree:
CRIU records the cgroup in the images and restores the tasks into it. Ending a run is then one
write to ``cgroup.kill``, which also ends stopped and frozen tasks.

Only cgroup v2's core files are used (``cgroup.procs``, ``cgroup.kill``), which exist without
any controller enabled, so this works on a hybrid hierarchy (v2 at /sys/fs/cgroup/unified, as
on these machines) as on a pure v2 one. The run cgroups live under ``criu-harness/`` at the
root of that hierarchy, named ``<harness pid>.<run name>``, so ``criu-harness cleanup`` can
tell a run whose harness is gone from one still running.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from harness.errors import WorkloadError

__all__ = ["BASE", "RunCgroup", "leftovers", "root"]

BASE = "criu-harness"
# The run cgroups this process made and has not removed: several runs may live in one process
# at once (run -j, a trial migration inside a run), and none is another's leftover.
_LIVE: set[Path] = set()


def root() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted, or None on a machine without one."""
    for part in psutil.disk_partitions(all=True):
        if part.fstype == "cgroup2":
            return Path(part.mountpoint)
    return None


@dataclass(frozen=True)
class RunCgroup:
    """The cgroup of one run."""

    path: Path

    @classmethod
    def create(cls, name: str) -> RunCgroup:
        top = root()
        if top is None:
            raise WorkloadError("no cgroup v2 hierarchy is mounted: cannot track the workloads")
        base = top / BASE
        base.mkdir(mode=0o755, exist_ok=True)
        path = base / f"{os.getpid()}.{name}"
        try:
            path.mkdir(mode=0o755)
        except OSError as exc:
            raise WorkloadError(f"cannot create the run's cgroup {path}: {exc.strerror}") from exc
        _LIVE.add(path)
        return cls(path)

    def child(self, name: str) -> RunCgroup:
        """A cgroup inside this one (a role's own, so it can be frozen alone)."""
        path = self.path / name
        path.mkdir(mode=0o755, exist_ok=True)
        return RunCgroup(path)

    @property
    def owner(self) -> int:
        """The pid of the harness that made this cgroup."""
        head = self.path.name.split(".", 1)[0]
        return int(head) if head.isdigit() else 0

    def enter(self) -> Callable[[], None]:
        """A ``preexec_fn`` that moves the new child into this cgroup before it runs anything:
        it cannot fork away before it is tracked."""
        procs = str(self.path / "cgroup.procs")

        def move() -> None:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)

        return move

    def owns(self, pid: int) -> bool:
        """pid is (or, as a zombie, was) in this cgroup or one below it."""
        top = root()
        try:
            line = Path(f"/proc/{pid}/cgroup").read_text().splitlines()[-1]
        except (OSError, IndexError):
            return False
        if top is None or not line.startswith("0::"):
            return False
        mine = "/" + str(self.path.relative_to(top))
        where = line[3:]
        return where == mine or where.startswith(mine + "/")

    def pids(self) -> list[int]:
        pids: list[int] = []
        for procs in self._procs_files():
            try:
                pids += [int(line) for line in procs.read_text().split()]
            except OSError:
                continue
        return pids

    def _procs_files(self) -> Iterator[Path]:
        if not self.path.is_dir():
            return
        for directory, _, _ in os.walk(self.path):
            yield Path(directory) / "cgroup.procs"

    def kill(self, timeout: float = 5.0) -> list[int]:
        """SIGKILL everything in the cgroup until it stays empty; return the pids that were
        still there after the timeout (none, unless the kernel could not kill them)."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids()
            if not pids:
                return []
            if time.monotonic() >= deadline:
                return pids
            try:
                (self.path / "cgroup.kill").write_text("1")
            except OSError:
                # A kernel without cgroup.kill (before 5.14): one signal each, the same end.
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            time.sleep(0.01)

    def remove(self) -> None:
        """Remove the (empty) cgroup and its children; a busy one is left for cleanup."""
        _LIVE.discard(self.path)
        if not self.path.is_dir():
            return
        for directory, _, _ in sorted(os.walk(self.path), key=lambda w: -len(w[0])):
            try:
                os.rmdir(directory)
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.EBUSY):
                    raise


def leftovers(include_live: bool = False, base: Path | None = None) -> list[RunCgroup]:
    """The run cgroups whose harness is gone (or every one, with include_live), under base
    (default: ``criu-harness/`` at the root of the cgroup v2 hierarchy)."""
    if base is None:
        top = root()
        base = top / BASE if top is not None else None
    if base is None or not base.is_dir():
        return []
    found = []
    for path in sorted(base.iterdir()):
        if not path.is_dir():
            continue
        group = RunCgroup(path)
        # This process's own count as gone unless it still runs them: a restore from a kept
        # run's images recreates that run's cgroup, and the run may have been this process's.
        mine = group.owner == os.getpid()
        alive = path in _LIVE if mine else group.owner and psutil.pid_exists(group.owner)
        if include_live or not alive:
            found.append(group)
    return found


# The cgroup the harness's own CRIU processes run in while a supervisor holds a run: a child of
# the run's cgroup, so that the keeper's kill after a SIGKILL of the harness ends them too (a
# CRIU's own children do not inherit its parent-death signal). None outside a run.
_criu_group: RunCgroup | None = None


def criu_group() -> RunCgroup | None:
    return _criu_group


def use_criu_group(group: RunCgroup | None) -> RunCgroup | None:
    """Make group the one CRIU runs in; return the one it replaces."""
    global _criu_group
    previous, _criu_group = _criu_group, group
    return previous
