"""The supervisor of a run's workloads: whatever ends its block, nothing of them survives."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, TracebackType

import psutil

from harness import cgroup, reaping
from harness.cgroup import RunCgroup
from harness.errors import WorkloadError
from harness.keeper import Keeper
from harness.namespace import Namespaces
from harness.process import Terminated, Workload

__all__ = ["Supervisor"]


class Supervisor:
    """Owns the workloads of a run: whatever ends the block (success, exception, Ctrl-C,
    SIGTERM), every workload is killed and reaped, stopped ones included.

    Every workload runs in a cgroup of the run (one child per role), so what it forked,
    daemons in sessions of their own included, and what CRIU restored all end with the run;
    a keeper outside the tree ends them too if the harness itself is killed (harness.keeper).
    ``name`` names the cgroup; ``keeper_log`` is where the keeper says what it did."""

    def __init__(self, name: str = "run", keeper_log: Path | None = None) -> None:
        self.workloads: dict[str, Workload] = {}
        self.name = name
        self.keeper_log = keeper_log
        self.cgroup: RunCgroup | None = None
        self._keeper: Keeper | None = None
        self._outer_criu_group: RunCgroup | None = None
        self._old_term: object = None

    def __enter__(self) -> Supervisor:
        reaping.become_subreaper()
        if threading.current_thread() is threading.main_thread():
            self._old_term = signal.signal(signal.SIGTERM, _raise_terminated)
        if cgroup.root() is not None:
            self.cgroup = RunCgroup.create(self.name)
            # The keeper's log lies in the run directory: it sweeps that for CRIU's mounts.
            run_dir = self.keeper_log.parent if self.keeper_log is not None else None
            self._keeper = Keeper(self.cgroup, self.keeper_log, run_dir)
            self._outer_criu_group = cgroup.use_criu_group(self.cgroup.child("criu"))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with _signals_blocked():
            members = self.cgroup.pids() if self.cgroup is not None else []
            self.kill_all()
            if self.cgroup is not None:
                self.cgroup.kill()
                # Daemons, restored trees and a daemon's exited middle process are the
                # harness's (a subreaper's) zombies now: collect those of this run only.
                reaping.reap([*members, *self._zombies()], timeout=5.0)
            reaping.reap_zombies({w.pid for w in self.workloads.values() if w.pid})
            if self.cgroup is not None:
                cgroup.use_criu_group(self._outer_criu_group)
                self.cgroup.remove()
                # A restore from a kept run's images (reproduce) recreates that run's cgroup,
                # whose harness is gone: once empty, it is nobody's.
                for group in cgroup.leftovers():
                    if not group.pids():
                        group.remove()
            if self._keeper is not None:
                self._keeper.stop()
        if self._old_term is not None:
            signal.signal(signal.SIGTERM, self._old_term)  # type: ignore[arg-type]

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        run_dir: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        namespaces: Namespaces | None = None,
    ) -> Workload:
        if name in self.workloads:
            raise WorkloadError(f"two workloads named {name!r}")
        group = self.cgroup.child(name) if self.cgroup is not None else None
        workload = Workload(name=name, argv=list(argv), run_dir=run_dir, cwd=cwd, env=env,
                            cgroup=group, namespaces=namespaces)
        self.workloads[name] = workload  # before start: a failed start is still cleaned up
        workload.start()
        return workload

    def expect(self, name: str, run_dir: Path) -> Workload:
        """A workload that will arrive by a restore (from another host), not started here:
        its cgroup is ready for CRIU to restore it into."""
        if name in self.workloads:
            raise WorkloadError(f"two workloads named {name!r}")
        group = self.cgroup.child(name) if self.cgroup is not None else None
        self.workloads[name] = workload = Workload(name=name, argv=[], run_dir=run_dir,
                                                   cgroup=group)
        return workload

    def _zombies(self) -> list[int]:
        group = self.cgroup
        if group is None:
            return []
        return [c.pid for c in psutil.Process().children() if group.owns(c.pid)]

    def kill_all(self) -> None:
        for workload in self.workloads.values():
            workload.kill()


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"terminated by signal {signum}")


@contextmanager
def _signals_blocked() -> Iterator[None]:
    """A second Ctrl-C must not interrupt the clean-up of the first."""
    sigs = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
