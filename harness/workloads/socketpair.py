"""A stream echo pair over an unnamed ``socketpair()`` inside one tree: the parent makes the
pair, then forks the server and the client, one end each.

    python -m harness.workloads.socketpair [--events E] [--server-events SE] [--interval ...]
"""

from __future__ import annotations

import argparse
import socket
import sys

from harness.workloads.client import run_socket_client
from harness.workloads.events import EventLog
from harness.workloads.protocol import recv_exact
from harness.workloads.tree import run_tree, serve_frames, tree_arguments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.workloads.socketpair")
    tree_arguments(parser)
    args = parser.parse_args(argv)
    server_end, client_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def server() -> int:
        client_end.close()
        events = EventLog(args.server_events)
        return serve_frames(lambda: recv_exact(server_end, args.size), server_end.sendall, events)

    def client() -> int:
        server_end.close()
        events = EventLog(args.events)

        return run_socket_client(client_end, events, args, stream=True)

    return run_tree("socketpair", server, client, close=(server_end, client_end))


if __name__ == "__main__":
    sys.exit(main())
