"""Workload processes: started detached from any terminal, frozen, reaped, adopted after a
restore, and always killed when the supervising block is left."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from harness import reaping
from harness.cgroup import RunCgroup
from harness.criu.process import running_criu
from harness.errors import WorkloadError
from harness.namespace import Namespaces
from harness.nsinit import launcher_status
from harness.proctree import (
    descends_from,
    is_stopped,
    own_pid,
    session_members,
    tree_pids,
)
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
    # A daemon's pid inside its PID namespace, once its pidfile named it (see became): the
    # process to ask (signal_main), the same after every restore.
    main: int | None = field(default=None, repr=False)
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
        made (but a restore's CRIU in there, and its children); without a cgroup, the tree
        under its pid."""
        if self.cgroup is not None:
            pids = self.cgroup.pids()
            # With what CRIU started itself: a criu that is a wrapper script forks before it
            # execs the real one, and a stopped fork would hold that CRIU up for good.
            criu = running_criu()
            return [pid for pid in pids if not (criu and descends_from(pid, criu))]
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

    def returncode(self) -> int | None:
        """The exit status of the process the harness started, once it exited (collecting
        it); None while it runs. A launcher's, for a daemon (see PidfileReady), also when
        an init of the harness's started it in a namespace (harness.nsinit)."""
        if self.namespaces is not None and self.namespaces.init:
            return launcher_status(self.namespaces.exits)
        if self.exit_status is None and self._popen is not None:
            code = self._popen.poll()
            if code is not None:
                self.exit_status = code
        return self.exit_status

    def host_pid(self, pid: int) -> int | None:
        """A pid as the workload's programs see it (a pidfile's), as the harness sees it:
        the same outside a PID namespace; inside, the process of the tree that has that pid
        in the namespace (None: none has)."""
        if self.namespaces is None:
            return pid
        for candidate in tree_pids(self.pid) if self.pid else []:
            try:
                if own_pid(candidate) == pid:
                    return candidate
            except OSError:
                continue
        return None

    def became(self, pid: int) -> None:
        """The program is now this process (a daemon its launcher left): outside a namespace
        the workload is that process from now on; inside one the workload stays the
        namespace's init (what CRIU dumps), and the daemon is the process to ask."""
        if self.namespaces is None or not self.namespaces.init:
            self.adopt(pid)
            return
        try:
            self.main = own_pid(pid)
        except OSError as exc:
            raise WorkloadError(f"{self.name}: the daemon (pid {pid}) is gone: {exc}") from None

    def signal_main(self, sig: int) -> None:
        """Signal the program itself: the daemon in a namespace (see became), else the
        workload's process."""
        if self.main is None:
            self.signal(sig)
            return
        target = self.host_pid(self.main)
        if target is not None:
            try:
                os.kill(target, sig)
            except ProcessLookupError:
                pass

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
