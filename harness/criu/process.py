"""A running CRIU process: its environment, its deadline, and what ends it.

Both backends start CRIU here (``criu ACTION`` or ``criu swrk``): in a session of its own (a
Ctrl-C at the terminal reaches the harness, which lets CRIU finish), killed with its harness
(a parent-death signal: CRIU itself is never dumped), and killed past its deadline.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO, Generic, TypeVar

import psutil

from harness import reaping
from harness.cgroup import criu_group
from harness.criu import yard
from harness.criu.options import CriuOptions
from harness.fields import JsonObject

__all__ = ["DEFAULT_TIMEOUT_S", "FAULT_ENV", "INTERRUPT_GRACE_S", "CriuProcess", "criu_cgroup",
           "Starter", "criu_env", "env_record", "running_criu"]

# How long an interrupted harness lets a running CRIU finish: killing CRIU in the middle of a
# dump can leave the task with CRIU's parasite code in it, so it is the last resort.
INTERRUPT_GRACE_S = 30.0
# How long one CRIU action may take unless told otherwise (--criu-timeout, [criu] timeout): a
# CRIU that hangs keeps the workload frozen, so past this it is killed and the migration rolls
# back like a failed dump. A 1 GiB process dumps in about 3 s here.
DEFAULT_TIMEOUT_S = 60.0
FAULT_ENV = "CRIU_FAULT"


def criu_env(opts: CriuOptions) -> dict[str, str]:
    """CRIU's environment: the harness's, with CRIU_FAULT only if the options ask for a fault
    (an inherited one would inject a fault that no call record shows)."""
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    if opts.fault is not None:
        env[FAULT_ENV] = str(opts.fault)
    return env


def env_record(opts: CriuOptions) -> JsonObject:
    """What the call record says about CRIU's environment (only what the harness set)."""
    return {"env": {FAULT_ENV: str(opts.fault)}} if opts.fault is not None else {}


PR_SET_PDEATHSIG = 1


# Looked up once, here: the child between fork and exec should do as little as it can.
_LIBC = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


CLONE_NEWNET = 0x40000000


def criu_cgroup() -> Path | None:
    """Where CRIU runs unless told otherwise: the run's cgroup for CRIU, if a run holds one."""
    group = criu_group()
    return group.path if group is not None else None


def _prepare(netns: str | None, cgroup: Path | None) -> None:
    """In the new CRIU before it runs: _die_with_parent, then join the network namespace at
    netns and the cgroup, where given: a restore's own (CriuOptions.cgroup), else the run's
    cgroup for CRIU (harness.cgroup.criu_group), so that CRIU's own children, which do not
    inherit its parent-death signal, are ended by the keeper too."""
    _die_with_parent()
    if netns is not None:
        fd = os.open(netns, os.O_RDONLY)
        try:
            if _LIBC.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {netns}")
        finally:
            os.close(fd)
    if cgroup is not None:
        fd = os.open(cgroup / "cgroup.procs", os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


# Every CRIU the harness started and has not collected yet: see running_criu(). Started from
# several threads (RpcBackend.warm's), read from any, hence the lock. A plain set, not a
# WeakSet: a weak reference's callback runs whenever the collector does, and a Ctrl-C or
# SIGTERM raised in there is printed and dropped instead of ending the run.
_STARTED: set[CriuProcess] = set()
_STARTED_LOCK = threading.Lock()


def running_criu() -> set[int]:
    """The pids of the CRIU processes the harness started and has not collected yet. A
    restore's CRIU runs in the role's cgroup (and may be started there ahead of its request:
    RpcBackend.warm): the role's members are its workload, not CRIU."""
    with _STARTED_LOCK:
        for done in [p for p in _STARTED if p.proc.returncode is not None]:
            _STARTED.discard(done)
        return {p.proc.pid for p in _STARTED}


T = TypeVar("T")


class Starter(Generic[T]):
    """The thread that starts CRIU processes for work to come: one, living until stop(),
    because CRIU's parent-death signal follows the thread that started it (a daemon that a
    restore's thread wants must outlive that thread; a CRIU started ahead must outlive the
    call that asked for it). A daemon thread: a harness on its way out (an interrupt, a
    SIGTERM) never waits for it, and what it started dies with it."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], T], Future[T]] | None] = (
            queue.SimpleQueue())
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, start: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((start, future))
        return future

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            start, future = job
            try:
                future.set_result(start())
            except BaseException as exc:  # noqa: BLE001 (the future's result raises it)
                future.set_exception(exc)

    def stop(self, timeout: float = 10.0) -> None:
        self._jobs.put(None)
        self._thread.join(timeout)


class CriuProcess:
    """A running CRIU (``criu ACTION`` or ``criu swrk``) with a deadline: past it, CRIU and its
    process group are killed and ``timed_out`` is set.

    It runs in its own session: a Ctrl-C at the terminal reaches the harness, which lets CRIU
    finish (within a grace period) rather than leave a task half-dumped.
    """

    def __init__(
        self,
        argv: Sequence[str],
        out: IO[bytes],
        opts: CriuOptions,
        pass_fds: Sequence[int] = (),
        netns: str | None = None,
        cgroup: Path | None = None,
    ) -> None:
        self.timeout = opts.timeout if opts.timeout is not None else DEFAULT_TIMEOUT_S
        self.images_dir = opts.images_dir
        self.deadline = time.monotonic() + self.timeout
        self.timed_out = False
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=list(pass_fds),
            env=criu_env(opts),
            # CRIU itself is never dumped, so a parent-death signal is safe here (unlike in a
            # workload): a harness killed mid-dump or mid-restore does not leave CRIU running.
            # netns: the network namespace it runs in, a /proc/PID/ns/net (harness.netns): the
            # destination side of a page transfer; cgroup: the one it runs in, a restore's
            # (CriuOptions.cgroup).
            preexec_fn=partial(_prepare, netns, cgroup or criu_cgroup()),
        )
        with _STARTED_LOCK:
            _STARTED.add(self)

    def restart_deadline(self) -> None:
        """Count the deadline from now: for a CRIU started ahead of its work (``criu swrk``
        waiting for its request, see RpcBackend.warm), the action starts with the request."""
        self.deadline = time.monotonic() + self.timeout

    def _left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def _kill(self) -> None:
        # Only while not yet reaped (no other code waits for it), so its pid is still its own.
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _reap_group(self, timeout: float = 2.0) -> None:
        """Collect what the kill left: CRIU's own children die with it, and come to the
        harness (a child subreaper) as zombies that nothing else would wait for."""
        pgid = self.proc.pid
        group = []
        for child in psutil.Process().children():
            try:
                if os.getpgid(child.pid) == pgid:
                    group.append(child.pid)
            except OSError:
                continue
        reaping.reap(group, timeout)

    def stop(self) -> int:
        """Kill CRIU (and its group) if it still runs, and collect it: for a CRIU that serves
        until its peer is done (a page server, the lazy-pages daemon) when the peer is gone."""
        self._kill()
        rc = self.proc.wait()
        self._reap_group()
        return rc

    def _expire(self) -> None:
        self.timed_out = True
        self._kill()

    @contextmanager
    def watchdog(self) -> Iterator[None]:
        """Kill CRIU if it is still running at the deadline while the block blocks on it (the
        RPC backend waits in pycriu's recv, not in wait()). The timer is stopped before the
        block ends, so it never signals a process that was reaped meanwhile."""
        timer = threading.Timer(self._left(), self._expire)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            timer.join()

    def wait(self) -> int:
        """CRIU's exit status, once it exits or is killed at the deadline. If the harness is
        interrupted meanwhile, CRIU is let finish (within a grace period and the deadline)
        before the interrupt is passed on, so no task is left half-dumped."""
        try:
            # A blocking wait, with the deadline kept by the watchdog's timer: Popen.wait with
            # a timeout polls, with sleeps growing to 50 ms, which added up to 50 ms to every
            # CRIU action (a 65 ms restore was seen done after 113 ms).
            with self.watchdog():
                rc = self.proc.wait()
            if self.timed_out:
                self._reap_group()
            if rc < 0:
                self._release_yard()
            return rc
        except BaseException:
            try:
                self.proc.wait(timeout=min(INTERRUPT_GRACE_S, self._left()))
            except BaseException:
                self._kill()
                self.proc.wait()
                self._release_yard()
            raise

    def _release_yard(self) -> None:
        """A CRIU killed during a restore leaves its cgroup yard mounted in the images
        directory (harness.criu.yard): nothing else will ever unmount it."""
        try:
            yard.release(self.images_dir)
        except OSError:
            pass  # `criu-harness cleanup` tries again
