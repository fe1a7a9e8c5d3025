"""The stream echo pair in one process tree: a parent forks the server and the client.

    python -m harness.workloads.stream_tree --socket C --server S [--events E]
        [--server-events SE] [--interval ...]

CRIU cannot dump half of an established AF_UNIX stream connection (``stream-echo``), but both
halves inside one dumped tree are fine: dumping the parent takes the whole connection along.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable

from harness.workloads import stream
from harness.workloads.protocol import client_arguments


def _fork(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    pid = os.fork()
    if pid == 0:
        # The child: run the role and never return into the parent's code.
        code = 1
        try:
            code = run(args)
        finally:
            os._exit(code)
    return pid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.workloads.stream_tree")
    client_arguments(parser)
    parser.add_argument("--server-events", help="the server's JSON-lines event log")
    args = parser.parse_args(argv)
    server_args = argparse.Namespace(socket=args.server, events=args.server_events, size=args.size)
    children = {_fork(stream.serve, server_args): "server"}
    # The client retries its connect() until the server listens (stream.connect).
    children[_fork(stream.client, args)] = "client"
    print(f"stream tree: server {min(children)} and client {max(children)}", flush=True)
    # Wait for the children; if one ends the other is useless: end it too, report the first.
    pid, status = os.waitpid(-1, 0)
    code = os.waitstatus_to_exitcode(status)
    print(f"stream tree: {children.pop(pid, pid)} ended with {code}", file=sys.stderr, flush=True)
    for other in children:
        os.kill(other, signal.SIGTERM)
        os.waitpid(other, 0)
    return code if code > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
