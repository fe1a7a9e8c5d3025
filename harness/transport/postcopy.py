"""``lazy`` (post-copy): ``criu dump --lazy-pages`` writes everything but the memory, says it
is ready (``--status-fd``) and then serves the pages itself, over a connection to the
destination; there ``criu lazy-pages`` takes them over that connection as the restored task
touches them (and fetches the rest in the background), and ``criu restore --lazy-pages``
restores the task without its memory. The pause no longer grows with memory. The dumped task
lives on (stopped, held by CRIU) until its last page is served, so the restore must not need
its pids: lazy needs ``--isolation ns``. If the restore fails, the lazy-pages daemon is
stopped, the dump fails in turn, and CRIU leaves the source task where it was."""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TypeVar

from harness.criu import Backend, CriuCall, CriuOptions
from harness.criu.log import log_signature
from harness.criu.process import DEFAULT_TIMEOUT_S, CriuProcess
from harness.errors import CriuError
from harness.netns import Host
from harness.rundir import private_dir
from harness.transport.local import Transport, bring_back_stats, ship
from harness.transport.sides import Sides

__all__ = ["Lazy"]

T = TypeVar("T")


def _in_background(work: Callable[[], T]) -> Future[T]:
    """work() in a thread of its own; its result (or exception) in the future."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as exc:  # noqa: BLE001 (the future's result raises it)
            future.set_exception(exc)

    threading.Thread(target=run, name="background").start()
    return future


@dataclass
class _Prepared:
    """What a lazy dump is given, made before the freeze: its connection to the destination
    (both ends), and the pipe of its --status-fd."""

    source_sk: socket.socket
    target_sk: socket.socket
    status_read: int
    status_write: int

    def close(self) -> None:
        self.source_sk.close()
        self.target_sk.close()
        os.close(self.status_read)
        os.close(self.status_write)


@dataclass
class _Held:
    """A lazy dump that serves its pages: its thread, its sockets, its daemon on the other side."""

    dst: Path
    thread: threading.Thread
    source_sk: socket.socket
    target_sk: socket.socket
    status: int  # the write end of the dump's --status-fd pipe (CRIU over RPC reopens it)
    error: list[BaseException] = field(default_factory=list)
    daemon: CriuProcess | None = None
    # The daemon while it starts (and says whether it is ready), before the restore takes it.
    starting: Future[tuple[CriuProcess, bool]] | None = None

    def close(self) -> None:
        if self.starting is not None and self.starting.exception() is None:
            self.daemon = self.starting.result()[0]
        self.starting = None
        for sk in (self.source_sk, self.target_sk):
            try:
                sk.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sk.close()
        if self.daemon is not None:
            self.daemon.stop()
        self.thread.join()
        os.close(self.status)


class Lazy(Transport):
    """``lazy``: see the module docstring."""

    name = "lazy"
    holds_source = True

    def __init__(self, criu: str, source: Host, destination: Host, run_dir: Path,
                 timeout: float | None = None) -> None:
        self.sides = Sides(criu, source, destination, run_dir, timeout or DEFAULT_TIMEOUT_S)
        self._held: dict[Path, _Held] = {}
        self._ready: dict[Path, _Prepared] = {}

    def prepare(self, images_dirs: list[Path]) -> None:
        """The connection each lazy dump will serve its pages over, and the pipe it says it
        is ready on."""
        for images_dir in images_dirs:
            self._ready[images_dir] = _Prepared(*self._connect(), *os.pipe())

    def dump_options(self, opts: CriuOptions) -> CriuOptions | None:
        ready = self._ready.get(opts.images_dir)
        if ready is None:
            return None
        return replace(opts, lazy_pages=True, ps_socket=ready.source_sk.fileno(),
                       status_fd=ready.status_write)

    def destination(self, images_dir: Path) -> Path:
        return self.sides.destination(images_dir)

    def _connect(self) -> tuple[socket.socket, socket.socket]:
        """A connection between the two hosts: the destination listens on its address."""
        sides = self.sides
        port = sides.port()
        with sides.target.listen(port) as listener:
            accepted: list[socket.socket] = []
            waiter = threading.Thread(target=lambda: accepted.append(listener.accept()[0]))
            waiter.start()
            try:
                source_sk = sides.source.connect(sides.target.address, port)
            finally:
                waiter.join(timeout=10.0)
        if not accepted:
            source_sk.close()
            raise CriuError(action="dump", pid=None, log_path=None,
                            signature=f"no connection to {sides.target.address}:{port}")
        return source_sk, accepted[0]

    def dump(self, backend: Backend, pid: int, opts: CriuOptions, calls: list[CriuCall]) -> None:
        dst = private_dir(self.sides.destination(opts.images_dir))
        if opts.images_dir not in self._ready:
            self._ready[opts.images_dir] = _Prepared(*self._connect(), *os.pipe())
        lazy = self.dump_options(opts)
        prepared = self._ready.pop(opts.images_dir)
        assert lazy is not None
        source_sk, target_sk = prepared.source_sk, prepared.target_sk
        read, write = prepared.status_read, prepared.status_write
        errors: list[BaseException] = []

        def serve() -> None:
            # Returns once the last page is served; CRIU kills the dumped task then.
            try:
                backend.dump(pid, lazy, calls=calls)
            except BaseException as exc:  # noqa: BLE001 (kept for finish() or the caller)
                errors.append(exc)

        # This thread waits for its CRIU to the end: CRIU's parent-death signal follows the
        # thread that started it.
        thread = threading.Thread(target=serve, name=f"lazy dump {pid}")
        thread.start()
        held = _Held(dst, thread, source_sk, target_sk, write, errors)
        deadline = time.monotonic() + self.sides.timeout
        try:
            while not select.select([read], [], [], 0.01)[0]:
                if not thread.is_alive() or time.monotonic() > deadline:
                    break
            ready = bool(select.select([read], [], [], 0)[0]) and os.read(read, 1) == b"\0"
        finally:
            os.close(read)
        if not ready:
            held.close()
            if errors and isinstance(errors[0], CriuError):
                raise errors[0]
            raise CriuError(action="dump", pid=pid, log_path=opts.log_path,
                            signature=log_signature(opts.log_path) or "the lazy dump never "
                            "said it was ready")
        ship(opts.images_dir, dst)
        # The lazy-pages daemon needs the images it was shipped, and nothing else: started
        # now, it is ready when the restore comes (20-30 ms less downtime).
        held.starting = _in_background(partial(
            self.sides.daemon, "lazy-pages", dst,
            ["--page-server", "--ps-socket", str(target_sk.fileno())], [target_sk.fileno()]))
        self._held[opts.images_dir] = held

    def restore(self, backend: Backend, opts: CriuOptions, calls: list[CriuCall]) -> CriuCall:
        held = self._held[opts.images_dir]
        try:
            assert held.starting is not None
            daemon, ready = held.starting.result()
            held.daemon, held.starting = daemon, None
            if not ready:
                raise self.sides.failure("lazy-pages", held.dst, daemon, "did not start")
            call = backend.restore(self.restore_options(opts), calls=calls)
        except BaseException:
            # The daemon stopped, the dump's connection closes: it fails and CRIU leaves the
            # source task where it was.
            self.abort(opts.images_dir)
            raise
        bring_back_stats(held.dst, opts.images_dir)
        return call

    def restore_options(self, opts: CriuOptions) -> CriuOptions:
        return replace(opts, images_dir=self.destination(opts.images_dir), lazy_pages=True)

    def abort(self, images_dir: Path) -> None:
        held = self._held.pop(images_dir, None)
        if held is not None:
            held.close()

    def finish(self) -> list[CriuError]:
        failures: list[CriuError] = []
        for images_dir, held in list(self._held.items()):
            if held.daemon is None:
                # Never restored (an earlier restore failed): its dump is given up, and CRIU
                # leaves the source task where it was, instead of serving nobody until the
                # deadline.
                self.abort(images_dir)
                continue
            held.thread.join(timeout=self.sides.timeout)
            if held.daemon is not None and held.daemon.wait() != 0:
                failures.append(self.sides.failure("lazy-pages", held.dst, held.daemon, "failed"))
            failures += [e for e in held.error if isinstance(e, CriuError)]
            self._held.pop(images_dir)
            held.close()
        return failures

    def close(self) -> None:
        for images_dir in list(self._held):
            self.abort(images_dir)
        for ready in self._ready.values():
            ready.close()
        self._ready.clear()
        self.sides.close()
