"""A connected datagram client for the datagram echo server (``harness.workloads.dgram``):
``connect()`` to the server's path, then plain ``send()``/``recv()``.

    python -m harness.workloads.dgram_connected --socket C --server S [--events E] [--interval ...]

Unlike the unconnected client, its socket names a peer, which lives in another process tree.
"""

from __future__ import annotations

import argparse
import socket
import sys

from harness.workloads.client import run_socket_client
from harness.workloads.events import EventLog
from harness.workloads.protocol import bind_path, client_arguments


def client(args: argparse.Namespace) -> int:
    events = EventLog(args.events)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    bind_path(sock, args.socket)  # bound: the server answers to this address
    sock.connect(args.server)
    print(f"connected datagram client {args.socket} -> {args.server}", flush=True)

    return run_socket_client(sock, events, args, stream=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.workloads.dgram_connected")
    client_arguments(parser)
    return client(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
