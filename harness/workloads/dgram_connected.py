"""A connected datagram client for the datagram echo server (``harness.workloads.dgram``):
``connect()`` to the server's path, then plain ``send()``/``recv()``.

    python -m harness.workloads.dgram_connected --socket C --server S [--events E] [--interval ...]

Unlike the unconnected client, its socket names a peer, which lives in another process tree.
"""

from __future__ import annotations

import argparse
import socket
import sys

from harness.workloads.client import run_client
from harness.workloads.events import EventLog
from harness.workloads.protocol import GREETING, bind_path, client_arguments, frame


def client(args: argparse.Namespace) -> int:
    events = EventLog(args.events)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    bind_path(sock, args.socket)  # bound: the server answers to this address
    sock.connect(args.server)
    print(f"connected datagram client {args.socket} -> {args.server}", flush=True)

    def send(seq: int) -> None:
        sock.send(frame(seq, GREETING, args.size))

    def recv(timeout: float) -> bytes:
        sock.settimeout(timeout)
        return sock.recv(args.size)

    return run_client(send, recv, events, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.workloads.dgram_connected")
    client_arguments(parser)
    return client(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
