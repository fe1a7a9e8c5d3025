"""Echo pairs inside one process tree: a parent forks the server and the client.

A mechanism that only exists between related processes (a pipe, a socketpair, an eventfd) is
set up by the parent before it forks; CRIU then dumps the parent, and both ends go along.
The parent waits; when one child ends, it ends the other and reports the first.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Protocol

from harness.workloads.events import EventLog
from harness.workloads.protocol import FRAME_SIZE, REPLY, frame, parse

Role = Callable[[], int]


class _HasClose(Protocol):
    def close(self) -> None: ...


Closable = int | _HasClose  # an fd, or a socket or file


def loop_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a role that is not told a socket path: its event log and the loop's pace."""
    parser.add_argument("--events", help="JSON-lines event log (in a tree: the client's)")
    parser.add_argument("--interval", type=float, default=0.01, help="seconds between messages")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for a reply")
    parser.add_argument("--size", type=int, default=FRAME_SIZE, help="frame size in bytes")
    parser.add_argument("--count", type=int, default=0, help="stop after N messages (0: never)")


def tree_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a one-tree pair: the loop's, and the server's own event log."""
    loop_arguments(parser)
    parser.add_argument("--server-events", help="the server's JSON-lines event log")


def fork(run: Role) -> int:
    pid = os.fork()
    if pid == 0:
        # The child: run the role and never return into the parent's code.
        code = 1
        try:
            code = run()
        finally:
            os._exit(code)
    return pid


def run_tree(name: str, server: Role, client: Role, close: Sequence[Closable] = ()) -> int:
    """Fork the server, then the client; wait until one of them ends. The parent closes its
    copies of ``close`` (the ends only the children use) once both are forked."""
    children = {fork(server): "server"}
    children[fork(client)] = "client"
    for end in close:
        if isinstance(end, int):
            os.close(end)
        else:
            end.close()
    print(f"{name} tree: server {min(children)} and client {max(children)}", flush=True)
    pid, status = os.waitpid(-1, 0)
    code = os.waitstatus_to_exitcode(status)
    print(f"{name} tree: {children.pop(pid, pid)} ended with {code}", file=sys.stderr, flush=True)
    for other in children:
        os.kill(other, signal.SIGTERM)
        os.waitpid(other, 0)
    return code if code > 0 else 1


def serve_frames(
    receive: Callable[[], bytes], answer: Callable[[bytes], object], events: EventLog
) -> int:
    """The server loop every pair shares: take a request, log it, answer it. Ends when the
    request channel ends (b"")."""
    while True:
        data = receive()
        if not data:
            events.emit("error", 0, error="request channel closed")
            print("server: request channel closed", file=sys.stderr, flush=True)
            return 1
        seq, _ = parse(data)
        events.emit("received", seq)
        try:
            answer(frame(seq, REPLY, len(data)))
        except OSError as exc:
            events.emit("error", seq, error=f"reply: {exc}")
