"""The two hosts of a transfer (harness.netns.Host) and the CRIU daemons that serve on the
destination (page-server, lazy-pages)."""

from __future__ import annotations

import itertools
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from harness.criu import CriuOptions
from harness.criu.log import log_signature
from harness.criu.process import DEFAULT_TIMEOUT_S, CriuProcess, Starter
from harness.errors import CriuError
from harness.netns import Host
from harness.rundir import private_dir
from harness.transport.local import DESTINATION_DIR

__all__ = ["PORT_BASE", "Sides"]

# Ports on the destination's address, one per transfer (overlapped dumps run side by side).
PORT_BASE = 27100


@dataclass
class Sides:
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
    _starter: Starter[CriuProcess] = field(default_factory=lambda: Starter("criu-daemons"))

    def close(self) -> None:
        self._starter.stop()

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

    def page_server(self, images_dir: Path) -> tuple[CriuProcess, int]:
        """``criu page-server`` listening on the destination's address for the dump into
        images_dir, ready; and its port. (The source connects to it, on this machine or on
        another: harness.transport.remote.)"""
        dst = private_dir(self.destination(images_dir))
        port = self.port()
        server, ready = self.daemon(
            "page-server", dst, ["--address", self.target.address, "--port", str(port)], [])
        if not ready:
            raise self.failure("page-server", dst, server, "did not start")
        return server, port

    def page_server_done(self, server: CriuProcess, dst: Path) -> None:
        """After the dump: the page server, told the session is over, has written the pages
        and ends; a CriuError with its log's signature if it failed."""
        if server.wait() != 0:
            raise self.failure("page-server", dst, server, "failed")

    def failure(self, action: str, dst: Path, proc: CriuProcess, what: str) -> CriuError:
        log = dst / f"{action}.log"
        rc = proc.stop()
        return CriuError(action=action, pid=None, log_path=log,
                         signature=log_signature(log) or f"{what} (exit status {rc})",
                         returncode=rc)
