"""An echo pair over two eventfds inside one tree: the client adds its message number to the
request counter, the server reads it and adds the same number to the reply counter.

    python -m harness.workloads.eventfd [--events E] [--server-events SE] [--interval ...]

An eventfd carries a counter, not bytes: a message is its number, read back whole because
the other side waits for each one to be taken before it writes the next.
"""

from __future__ import annotations

import argparse
import os
import select
import sys

from harness.workloads.client import run_client
from harness.workloads.events import EventLog
from harness.workloads.protocol import GREETING, REPLY, frame, parse
from harness.workloads.tree import run_tree, serve_frames, tree_arguments


def take(fd: int, timeout: float | None = None) -> int:
    if timeout is not None:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise TimeoutError(f"no event within {timeout:g} s")
    return os.eventfd_read(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.workloads.eventfd")
    tree_arguments(parser)
    args = parser.parse_args(argv)
    requests = os.eventfd(0)
    replies = os.eventfd(0)

    def server() -> int:
        events = EventLog(args.server_events)
        return serve_frames(
            lambda: frame(take(requests), GREETING, args.size),
            lambda data: os.eventfd_write(replies, parse(data)[0]),
            events,
        )

    def client() -> int:
        def send(seq: int) -> None:
            os.eventfd_write(requests, seq)

        def recv(timeout: float) -> bytes:
            return frame(take(replies, timeout), REPLY, args.size)

        return run_client(send, recv, EventLog(args.events), args)

    return run_tree("eventfd", server, client, close=(requests, replies))


if __name__ == "__main__":
    sys.exit(main())
