"""Workload processes: started detached from any terminal, frozen, reaped, adopted after a
restore, and always killed when the supervising block is left."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

import psutil

from harness import cgroup, reaping
from harness.cgroup import RunCgroup
from harness.errors import WorkloadError
from harness.keeper import Keeper
from harness.namespace import Namespaces
from harness.proctree import is_stopped, session_members, tree_pids
from harness.waiting import wait_for


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every context manager on the way out cleans up."""


@dataclass
class Workload:
    """One process the harness started (and, after a restore, the same process again)."""

    name: str
    argv: Sequence[str]
    run_dir: Path
    cwd: Path | None = None
    env: Mapping[str, str] | None = None
    pid: int = 0
    exit_status: int | None = None
    # The role's own cgroup (a child of the run's): whatever the workload forks, daemons and
    # new sessions included, is in it, and CRIU restores the tree into it.
    cgroup: RunCgroup | None = None
    # Started as the init of namespaces of its own (harness.namespace), or plainly (None).
    namespaces: Namespaces | None = None
    _popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _create_time: float = field(default=0.0, repr=False)
    # The tree's other pids when last looked at (note_tree): a dump kills them all, and their
    # zombies, reparented to the harness, must be reaped too before their pids are restored.
    _descendants: list[int] = field(default_factory=list, repr=False)

    @property
    def stdout_path(self) -> Path:
        return self.run_dir / f"{self.name}.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.run_dir / f"{self.name}.stderr"

    def start(self) -> None:
        env = {**os.environ, **(self.env or {})}
        if self.namespaces is not None:
            self.pid = self.namespaces.start(
                self.argv, self.stdout_path, self.stderr_path, self.cwd or self.run_dir, env,
                self.cgroup.enter() if self.cgroup is not None else None,
            )
            self._remember()
            return
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            try:
                # A new session with no terminal: CRIU refuses tasks that share the caller's
                # session or tty unless --shell-job, and a Ctrl-C must reach the harness only.
                self._popen = subprocess.Popen(
                    list(self.argv),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    cwd=self.cwd or self.run_dir,
                    env=env,
                    start_new_session=True,
                    close_fds=True,
                    preexec_fn=self.cgroup.enter() if self.cgroup is not None else None,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                raise WorkloadError(f"{self.name}: cannot start {self.argv[0]!r}: {exc}") from exc
        self.pid = self._popen.pid
        self._remember()

    def _remember(self) -> None:
        try:
            self._create_time = psutil.Process(self.pid).create_time()
        except psutil.Error:
            self._create_time = 0.0

    def process(self) -> psutil.Process | None:
        """The live process, or None if it is gone (or its pid now names another process)."""
        if not self.pid or self.exit_status is not None:
            return None
        try:
            proc = psutil.Process(self.pid)
            if self._create_time and abs(proc.create_time() - self._create_time) > 0.05:
                return None
            return proc
        except psutil.Error:
            return None

    def status(self) -> str:
        proc = self.process()
        if proc is None:
            return "gone"
        try:
            return str(proc.status())
        except psutil.Error:
            return "gone"

    def alive(self) -> bool:
        return self.status() not in ("gone", psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)

    def signal(self, sig: int) -> None:
        proc = self.process()
        if proc is not None:
            try:
                proc.send_signal(sig)
            except psutil.Error:
                pass

    def members(self) -> list[int]:
        """Every process of the workload: its cgroup's, whatever sessions and groups they
        made; without a cgroup, the tree under its pid."""
        if self.cgroup is not None:
            return self.cgroup.pids()
        return tree_pids(self.pid) if self.process() is not None else []

    def _stop_members(self) -> bool:
        """SIGSTOP every member not stopped yet; True once all are (a member forked meanwhile
        is caught on the next round)."""
        running = [pid for pid in self.members() if not is_stopped(pid)]
        for pid in running:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        return not running

    def freeze(self, timeout: float = 5.0) -> None:
        """SIGSTOP every process of the workload, and wait until the kernel reports each one
        stopped: a workload that forks stops whole, whatever sessions and groups it made."""
        wait_for(
            lambda: self.status() in ("gone", psutil.STATUS_ZOMBIE) or self._stop_members(),
            timeout=timeout,
            interval=0.0005,  # the other workloads still run meanwhile: keep it short
            error=lambda _: WorkloadError(
                f"{self.name} (pid {self.pid}) to stop: not within {timeout:g} s"
            ),
        )
        if not self.alive():
            raise WorkloadError(f"{self.name} (pid {self.pid}) died while being frozen")
        self.note_tree()

    def note_tree(self) -> None:
        """Remember the pids of the workload's descendants (see reap)."""
        self._descendants = tree_pids(self.pid)[1:] if self.pid else []

    def signal_members(self, sig: int) -> None:
        """Signal every process of the workload (see members)."""
        for pid in self.members():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def in_syscall(self) -> bool:
        """Blocked in (or stopped inside) a system call, as opposed to running its own code.

        /proc/PID/syscall names the call a stopped task was waiting in, and -1 for a task
        stopped in user space, perhaps halfway through handling a request."""
        try:
            first = Path(f"/proc/{self.pid}/syscall").read_text().split(maxsplit=1)[0]
        except (OSError, IndexError):
            return False
        return first not in ("-1", "running")

    def thaw(self) -> None:
        self.signal_members(signal.SIGCONT)

    def reap(self, timeout: float = 10.0) -> int:
        """Wait for the process to exit and collect it, so its pid is free for the restore;
        then its descendants that the dump killed (see note_tree), for theirs."""
        if self.exit_status is not None:
            return self.exit_status
        deadline = time.monotonic() + timeout
        reaped = reaping.reap([self.pid], timeout)
        if reaped.alive:
            raise WorkloadError(f"{self.name} (pid {self.pid}) did not exit within {timeout:g} s")
        self.exit_status = reaped.exit_codes[self.pid] or 0  # None: not ours to collect
        if self._popen is not None:
            # Tell subprocess the child is collected: otherwise it may later waitpid() this
            # pid, which by then belongs to the restored process.
            self._popen.returncode = self.exit_status
        left = max(0.1, deadline - time.monotonic())
        stuck = reaping.reap(self._descendants, left).alive
        self._descendants = []
        if stuck:
            raise WorkloadError(f"{self.name}'s child {stuck[0]} to be reaped: not within {left:g} s")
        return self.exit_status

    def adopt(self, pid: int) -> None:
        """Take over a restored process (the harness is its subreaper)."""
        self.pid = pid
        self.exit_status = None
        self._popen = None
        self._remember()

    def kill(self) -> None:
        """SIGKILL the whole session the workload leads (its children too; SIGKILL also ends a
        stopped task) and reap it."""
        if self.exit_status is not None or not self.pid:
            return
        for proc in session_members(self.pid):
            try:
                proc.kill()
            except psutil.Error:
                pass
        self.signal_members(signal.SIGKILL)
        self.signal(signal.SIGKILL)
        try:
            self.reap(timeout=10.0)
        except WorkloadError:
            pass

    def tail(self, lines: int = 5) -> str:
        """The last lines of the process's stderr, to say why it failed."""
        try:
            text = self.stderr_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])


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
        self._old_term: object = None

    def __enter__(self) -> Supervisor:
        reaping.become_subreaper()
        if threading.current_thread() is threading.main_thread():
            self._old_term = signal.signal(signal.SIGTERM, _raise_terminated)
        if cgroup.root() is not None:
            self.cgroup = RunCgroup.create(self.name)
            self._keeper = Keeper(self.cgroup, self.keeper_log)
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
                # Daemons and restored trees are the harness's (a subreaper's) zombies now.
                reaping.reap(members, timeout=5.0)
            reaping.reap_zombies({w.pid for w in self.workloads.values() if w.pid})
            if self.cgroup is not None:
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
