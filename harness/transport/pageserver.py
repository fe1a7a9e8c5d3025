"""``page-server``: the destination runs ``criu page-server``, listening on its address; the
source connects to it and hands the connection to ``criu dump`` (``--page-server
--ps-socket``): the pages go straight to the destination's directory. The other images follow
them there, as a migration tool copies them; the restore reads the destination's directory
only."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from harness.criu import Backend, CriuCall, CriuOptions
from harness.criu.process import DEFAULT_TIMEOUT_S, CriuProcess
from harness.netns import Host
from harness.transport.local import Transport, bring_back_stats, ship
from harness.transport.sides import Sides

__all__ = ["PageServer", "dump_uncorked"]


class PageServer(Transport):
    """``page-server``: see the module docstring."""

    name = "page-server"

    def __init__(self, criu: str, source: Host, destination: Host, run_dir: Path,
                 timeout: float | None = None) -> None:
        self.sides = Sides(criu, source, destination, run_dir, timeout or DEFAULT_TIMEOUT_S)
        self._ready: dict[Path, tuple[CriuProcess, socket.socket]] = {}

    def destination(self, images_dir: Path) -> Path:
        return self.sides.destination(images_dir)

    def prepare(self, images_dirs: list[Path]) -> None:
        """A page server listening for each dump, and the source connected to it."""
        for images_dir in images_dirs:
            self._ready[images_dir] = self._serve(images_dir)

    def _serve(self, images_dir: Path) -> tuple[CriuProcess, socket.socket]:
        server, port = self.sides.page_server(images_dir)
        try:
            return server, self.sides.source.connect(self.sides.target.address, port)
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
            with sk:
                dump_uncorked(backend, pid, final, sk, calls)
            sides.page_server_done(server, dst)
        finally:
            server.stop()
        ship(opts.images_dir, dst)

    def restore(self, backend: Backend, opts: CriuOptions, calls: list[CriuCall]) -> CriuCall:
        call = backend.restore(self.restore_options(opts), calls=calls)
        bring_back_stats(self.destination(opts.images_dir), opts.images_dir)
        return call

    def restore_options(self, opts: CriuOptions) -> CriuOptions:
        return replace(opts, images_dir=self.destination(opts.images_dir))

    def close(self) -> None:
        for server, sk in self._ready.values():
            sk.close()
            server.stop()
        self._ready.clear()
        self.sides.close()


def dump_uncorked(backend: Backend, pid: int, opts: CriuOptions, sk: socket.socket,
                  calls: list[CriuCall]) -> None:
    """The dump over the connection to a page server (opts.ps_socket is sk), uncorked."""
    with _uncorked(sk):
        backend.dump(pid, opts, calls=calls)


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
