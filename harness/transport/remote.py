"""``page-server`` to another machine: the source's half of ``run --destination``.

The destination's ``criu-harness receive`` starts each ``criu page-server`` (the same
``Sides.page_server`` as the veth pair's) and says its port; the source connects to it and
dumps over the connection (the same ``dump_uncorked``). The other images go over with the
run directory when the workload arrives (harness.departure). This side restores only to roll
a failed dump back: the pages it sent are fetched back first.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

from harness.criu import Backend, CriuCall, CriuOptions
from harness.errors import CriuError
from harness.netns import Host
from harness.transport.local import Transport
from harness.transport.pageserver import dump_uncorked
from harness.wire import Channel, unpack

__all__ = ["Remote"]

# How long a page server the receiver starts may take to say it is ready, and to end.
ANSWER_TIMEOUT_S = 60.0


class Remote(Transport):
    """``page-server`` with the destination on another host, reached through channel."""

    name = "page-server"

    def __init__(self, channel: Channel, source: Host, address: str) -> None:
        self.channel = channel
        self.source = source
        self.address = address  # the destination's, where its page servers listen
        self._ready: dict[Path, socket.socket] = {}

    def prepare(self, images_dirs: list[Path]) -> None:
        for images_dir in images_dirs:
            self._ready[images_dir] = self._serve(images_dir)

    def _serve(self, images_dir: Path) -> socket.socket:
        answer, _ = self.channel.ask({"op": "serve", "images_dir": str(images_dir)},
                                     timeout=ANSWER_TIMEOUT_S)
        return self.source.connect(self.address, int(answer["port"]))

    def dump_options(self, opts: CriuOptions) -> CriuOptions | None:
        sk = self._ready.get(opts.images_dir)
        return replace(opts, ps_socket=sk.fileno()) if sk is not None else None

    def dump(self, backend: Backend, pid: int, opts: CriuOptions, calls: list[CriuCall]) -> None:
        if opts.images_dir not in self._ready:
            self._ready[opts.images_dir] = self._serve(opts.images_dir)
        sk = self._ready.pop(opts.images_dir)
        try:
            with sk:
                dump_uncorked(backend, pid, replace(opts, ps_socket=sk.fileno()), sk, calls)
        except CriuError:
            # The page server ends with the connection; the dump's own error is what counts.
            self._served(opts.images_dir)
            raise
        if failed := self._served(opts.images_dir):
            rc = failed.get("rc")
            raise CriuError(action="page-server", pid=None,
                            log_path=Path(f"{self.channel.peer}:{failed.get('log', '?')}"),
                            signature=str(failed.get("signature") or "failed"),
                            returncode=rc if isinstance(rc, int) else None)

    def _served(self, images_dir: Path) -> dict[str, object] | None:
        """Wait for the page server of that dump to end: what its failure was, if it failed."""
        answer, _ = self.channel.ask({"op": "served", "images_dir": str(images_dir)},
                                     timeout=ANSWER_TIMEOUT_S)
        failed = answer.get("failed")
        return failed if isinstance(failed, dict) else None

    def restore(self, backend: Backend, opts: CriuOptions, calls: list[CriuCall]) -> CriuCall:
        """A rollback's restore, here: the pages come back from the destination first."""
        _, data = self.channel.ask({"op": "fetch", "images_dir": str(opts.images_dir)},
                                   timeout=ANSWER_TIMEOUT_S)
        unpack(data, opts.images_dir)
        return backend.restore(opts, calls=calls)

    def close(self) -> None:
        for sk in self._ready.values():
            sk.close()
        self._ready.clear()
