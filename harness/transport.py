"""How a dump's pages reach the restore: ``--transport local|page-server|lazy``.

- ``local``: CRIU writes the images to the run's directory and restores from there.
- ``page-server``: the destination runs ``criu page-server``, listening on its address; the
  source connects to it and hands the connection to ``criu dump`` (``--page-server
  --ps-socket``): the pages go straight to the destination's directory. The other images
  follow them there, as a migration tool copies them; the restore reads the destination's
  directory only.
- ``lazy`` (post-copy): ``criu dump --lazy-pages`` writes everything but the memory, says it is
  ready (``--status-fd``) and then serves the pages itself, over a connection to the
  destination; there ``criu lazy-pages`` takes them over that connection as the restored task
  touches them (and fetches the rest in the background), and ``criu restore --lazy-pages``
  restores the task without its memory. The pause no longer grows with memory. The dumped
  task lives on (stopped, held by CRIU) until its last page is served, so the restore must
  not need its pids: lazy needs ``--isolation ns``. If the restore fails, the lazy-pages
  daemon is stopped, the dump fails in turn, and CRIU leaves the source task where it was.

The two sides are a :class:`harness.netns.Host` each: on one machine two network namespaces
joined by a veth pair (harness.netns), so the pages cross a real link; between two machines
(the Vagrantfile's two-machine mode) the same code with the machines' own addresses.
The destination's directory is ``dst/`` in the run directory, mirroring ``images/``.
"""

from __future__ import annotations

import itertools
import os
import select
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TypeVar

from harness.cgroup import RunCgroup
from harness.criu import Backend, CriuCall, CriuOptions
from harness.criu.log import log_signature
from harness.criu.options import Action
from harness.criu.process import DEFAULT_TIMEOUT_S, CriuProcess
from harness.errors import CriuError, UsageError
from harness.netns import Host, VethPair
from harness.rundir import private_dir
from harness.sysctl import raised_pipe_max_size

__all__ = ["DESTINATION_DIR", "TRANSPORTS", "Lazy", "PageServer", "Transport", "check_transport",
           "opened"]

TRANSPORTS = ("local", "page-server", "lazy")
T = TypeVar("T")
DESTINATION_DIR = "dst"
# Ports on the destination's address, one per transfer (overlapped dumps run side by side).
PORT_BASE = 27100
# Files of a dump that are not images: left where they were written.
_NOT_SHIPPED = (".log", ".out", ".pid", ".conf", ".highlighted.txt")


def check_transport(name: str) -> str:
    if name not in TRANSPORTS:
        raise UsageError(f"unknown transport {name!r}: choose one of {', '.join(TRANSPORTS)}")
    return name


class Transport:
    """``local``: the restore reads the images where the dump wrote them."""

    name = "local"
    # The dumped task lives on after its dump returns, until finish() (lazy): the migration
    # collects it only then, and rolls a failed migration back by abort() instead of a restore.
    holds_source = False

    def prepare(self, images_dirs: list[Path]) -> None:
        """Before the workload is frozen: set up what each dump into images_dirs will use
        (page servers, connections), so that it does not count in the downtime."""

    def dump(self, backend: Backend, pid: int, opts: CriuOptions, calls: list[CriuCall]) -> None:
        backend.dump(pid, opts, calls=calls)

    def restore(
        self, backend: Backend, opts: CriuOptions, calls: list[CriuCall]
    ) -> CriuCall:
        return backend.restore(self.restore_options(opts), calls=calls)

    def restore_options(self, opts: CriuOptions) -> CriuOptions:
        """The options a restore asked for with opts runs with."""
        return opts

    def dump_options(self, opts: CriuOptions) -> CriuOptions | None:
        """The options a dump asked for with opts runs with, if they are known before it
        starts (after prepare()); None if what they name is made at the dump."""
        return opts

    def warm(self, backend: Backend, action: Action, opts: CriuOptions, wait: bool = False) -> None:
        """Have the backend get ready for that action (Backend.warm) with the options it will
        run with, where they are known now. The file descriptors they name (a prepared
        connection) stay open until the action."""
        final = self.restore_options(opts) if action == "restore" else self.dump_options(opts)
        if final is not None:
            backend.warm(action, final, wait)

    def destination(self, images_dir: Path) -> Path:
        """Where the restore of the images dumped into images_dir reads them."""
        return images_dir

    def abort(self, images_dir: Path) -> None:
        """Give up a dump whose task is still held (holds_source): it lives on where it was."""

    def finish(self) -> list[CriuError]:
        """After the restores: wait for what still moves pages; the failures it ended with."""
        return []

    def close(self) -> None:
        """End whatever still runs (page servers, daemons); the run is over."""


def ship(source: Path, destination: Path) -> None:
    """The images of a dump that did not go to the destination by themselves (all but the
    pages a page server received), copied there as a migration tool would."""
    for entry in os.scandir(source):
        if entry.is_file() and not entry.name.endswith(_NOT_SHIPPED):
            if not (destination / entry.name).exists():
                shutil.copy2(entry.path, destination / entry.name)


def _bring_back_stats(destination: Path, source: Path) -> None:
    """CRIU's restore statistics, next to the dump's (harness.stats reads both from one place)."""
    stats = destination / "stats-restore"
    if stats.exists() and destination != source:
        shutil.copy2(stats, source / "stats-restore")


@dataclass
class _Sides:
    """What both remote transports share: the two hosts and the destination's directory."""

    criu: str
    source: Host
    target: Host
    run_dir: Path
    timeout: float = DEFAULT_TIMEOUT_S
    _ports: itertools.count[int] = field(default_factory=lambda: itertools.count(PORT_BASE))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Starts the daemons: CRIU's parent-death signal follows the thread that started it, and a
    # daemon outlives the (overlapped) restore's thread that wants it; this one lives until
    # close().
    _starter: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="criu-daemons"))

    def close(self) -> None:
        self._starter.shutdown(wait=True)

    def port(self) -> int:
        with self._lock:
            return next(self._ports)

    def destination(self, images_dir: Path) -> Path:
        try:
            inside = images_dir.relative_to(self.run_dir)
        except ValueError:
            return images_dir.parent / f"{images_dir.name}.{DESTINATION_DIR}"
        return self.run_dir / DESTINATION_DIR / inside

    def daemon(
        self, action: str, dst: Path, args: list[str], fds: list[int]
    ) -> tuple[CriuProcess, bool]:
        """A CRIU serving on the destination (page-server, lazy-pages), and whether it said it
        is ready (False: it ended first, its log says why)."""
        read, write = os.pipe()
        opts = CriuOptions(dst, log_file=f"{action}.log", timeout=self.timeout)
        argv = [self.criu, action, "--images-dir", str(dst), "--log-file", opts.log_file, "-v4",
                *args, "--status-fd", str(write)]
        def start() -> CriuProcess:
            with (dst / f"{action}.out").open("wb") as out:
                return CriuProcess(argv, out, opts, pass_fds=[*fds, write],
                                   netns=self.target.netns)

        try:
            proc = self._starter.submit(start).result()
        finally:
            os.close(write)  # CRIU holds the only other end: EOF if it dies before it is ready
        with os.fdopen(read, "rb") as status:
            ready = status.read(1) == b"\0"
        return proc, ready

    def failure(self, action: str, dst: Path, proc: CriuProcess, what: str) -> CriuError:
        log = dst / f"{action}.log"
        rc = proc.stop()
        return CriuError(action=action, pid=None, log_path=log,
                         signature=log_signature(log) or f"{what} (exit status {rc})",
                         returncode=rc)


class PageServer(Transport):
    """``page-server``: see the module docstring."""

    name = "page-server"

    def __init__(self, criu: str, source: Host, destination: Host, run_dir: Path,
                 timeout: float | None = None) -> None:
        self.sides = _Sides(criu, source, destination, run_dir, timeout or DEFAULT_TIMEOUT_S)
        self._ready: dict[Path, tuple[CriuProcess, socket.socket]] = {}

    def destination(self, images_dir: Path) -> Path:
        return self.sides.destination(images_dir)

    def prepare(self, images_dirs: list[Path]) -> None:
        """A page server listening for each dump, and the source connected to it."""
        for images_dir in images_dirs:
            self._ready[images_dir] = self._serve(images_dir)

    def _serve(self, images_dir: Path) -> tuple[CriuProcess, socket.socket]:
        sides = self.sides
        dst = private_dir(sides.destination(images_dir))
        port = sides.port()
        server, ready = sides.daemon(
            "page-server", dst, ["--address", sides.target.address, "--port", str(port)], [])
        if not ready:
            raise sides.failure("page-server", dst, server, "did not start")
        try:
            return server, sides.source.connect(sides.target.address, port)
        except BaseException:
            server.stop()
            raise

    def dump_options(self, opts: CriuOptions) -> CriuOptions | None:
        ready = self._ready.get(opts.images_dir)
        return replace(opts, ps_socket=ready[1].fileno()) if ready is not None else None

    def dump(self, backend: Backend, pid: int, opts: CriuOptions, calls: list[CriuCall]) -> None:
        sides = self.sides
        dst = sides.destination(opts.images_dir)
        if opts.images_dir not in self._ready:
            self._ready[opts.images_dir] = self._serve(opts.images_dir)
        final = self.dump_options(opts)
        server, sk = self._ready.pop(opts.images_dir)
        assert final is not None
        try:
            with sk, _uncorked(sk):
                backend.dump(pid, final, calls=calls)
            # The dump told it the session is over: it has written the pages and ends.
            if server.wait() != 0:
                raise sides.failure("page-server", dst, server, "failed")
        finally:
            server.stop()
        ship(opts.images_dir, dst)

    def restore(self, backend: Backend, opts: CriuOptions, calls: list[CriuCall]) -> CriuCall:
        call = backend.restore(self.restore_options(opts), calls=calls)
        _bring_back_stats(self.destination(opts.images_dir), opts.images_dir)
        return call

    def restore_options(self, opts: CriuOptions) -> CriuOptions:
        return replace(opts, images_dir=self.destination(opts.images_dir))

    def close(self) -> None:
        for server, sk in self._ready.values():
            sk.close()
            server.stop()
        self._ready.clear()
        self.sides.close()


@contextmanager
def _uncorked(sk: socket.socket) -> Iterator[None]:
    """Keep the page-server connection uncorked while CRIU dumps over it.

    CRIU sets TCP_CORK on it when it starts and never clears it: its last message (the
    close of the session, a few bytes) then waits out the kernel's 200 ms cork timer before the
    page server sees it, and the dump waits for the answer (measured here: a tiny process
    dumped in 240 ms to the page server against 40 ms to local files, 45 ms uncorked). The
    socket is the harness's too: a thread clears the cork once CRIU has set it."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.001):
            try:
                if sk.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK):
                    sk.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
                    return
            except OSError:
                return

    thread = threading.Thread(target=watch, name="uncork")
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


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
        self.sides = _Sides(criu, source, destination, run_dir, timeout or DEFAULT_TIMEOUT_S)
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
        _bring_back_stats(held.dst, opts.images_dir)
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


@contextmanager
def opened(
    name: str,
    criu: str,
    run_dir: Path,
    cgroup: RunCgroup | None = None,
    timeout: float | None = None,
    say: Callable[[str], None] = print,
) -> Iterator[Transport]:
    """The transport called name for one run, with what it needs: for page-server and lazy a
    second host (a veth pair between two network namespaces in the run's cgroup), for lazy
    fs.pipe-max-size raised (harness.sysctl). Everything ends with the block."""
    check_transport(name)
    if name == "local":
        yield Transport()
        return
    with ExitStack() as stack:
        if name == "lazy":
            stack.enter_context(raised_pipe_max_size(say=say))
        pair = stack.enter_context(VethPair(cgroup))
        kind = Lazy if name == "lazy" else PageServer
        transport = kind(criu, pair.source, pair.destination, run_dir, timeout)
        stack.callback(transport.close)
        yield transport
