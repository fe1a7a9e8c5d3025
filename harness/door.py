"""The receiver's listening socket (``criu-harness receive``): one run at a time, and every
other source told within seconds that the receiver is busy, and with whose run.

A receiver restores one workload at a time (its supervisor, its signals, the pids it hands
out are the main thread's), so a second source's connection is not left in the listen queue
until its hello times out, nor read afterwards when that source has long given up: a thread
of the door accepts it, waits a few seconds for the run in progress to end, else reads its
hello and refuses it with the reason.
"""

from __future__ import annotations

import queue
import socket
import threading
from collections.abc import Callable
from contextlib import suppress

from harness.errors import RemoteError, UsageError
from harness.wire import Channel

__all__ = ["Door"]

# How long a refused source may take to say hello before the door closes on it.
HELLO_S = 2.0
# How long a source waits at the door for the run in progress to end before it is refused.
GRACE_S = 3.0
# How often the waiting main thread looks up (a Ctrl-C is taken between two looks).
_POLL_S = 0.2


class Door:
    """Accepts on address:port; ``next()`` gives the main thread one connection at a time,
    ``done()`` opens the door for the next one."""

    def __init__(self, address: str, port: int, say: Callable[[str], None]) -> None:
        try:
            self.listener = socket.create_server((address, port))
        except OSError as exc:
            raise UsageError(f"--listen {address}:{port}: {exc.strerror or exc}") from None
        self.say = say
        self._free = threading.Condition()
        self._busy: str | None = None  # the peer whose run goes on
        self._handed: queue.Queue[tuple[socket.socket, str]] = queue.Queue()
        # A daemon: a receiver on its way out never waits for it (closing the listener ends
        # its accept).
        threading.Thread(target=self._accept, name="door", daemon=True).start()

    def __enter__(self) -> Door:
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()

    def next(self) -> tuple[socket.socket, str]:
        """The next source's connection and its address (blocks, Ctrl-C aside)."""
        while True:
            with suppress(queue.Empty):
                return self._handed.get(timeout=_POLL_S)

    def done(self) -> None:
        """The run in progress ended: the next source may come in."""
        with self._free:
            self._busy = None
            self._free.notify()

    def _accept(self) -> None:
        while True:
            try:
                sk, (peer, *_) = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._admit, args=(sk, peer), name="door-admit",
                             daemon=True).start()

    def _admit(self, sk: socket.socket, peer: str) -> None:
        """Hand the connection over once no run is on, waiting a little: a source's next
        run (``--plan all``, several scenarios) connects as soon as it has the verdict, while
        the receiver is still closing the run that gave it. Else turn it away."""
        with self._free:
            took = self._free.wait_for(lambda: self._busy is None, timeout=GRACE_S)
            busy = self._busy
            if took:
                self._busy = peer
        if took:
            sk.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._handed.put((sk, peer))
            return
        why = f"busy with a run from {busy} (one run at a time)"
        self.say(f"turned away {peer}: {why}")
        _turn_away(sk, peer, f"{why}: try again when it has ended")


def _turn_away(sk: socket.socket, peer: str, why: str) -> None:
    """Read the source's hello (so that it reads the answer, not a reset) and refuse it."""
    channel = Channel(sk, f"source {peer}")
    with sk, suppress(RemoteError, OSError):
        sk.settimeout(HELLO_S)
        channel.receive()
        channel.refuse(why)
