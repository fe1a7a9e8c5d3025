"""Seqpacket echo pair over AF_UNIX (SOCK_SEQPACKET), in two trees: connected like a stream,
framed like datagrams.

    python -m harness.workloads.seqpacket server --socket S [--events E]
    python -m harness.workloads.seqpacket client --socket C --server S [--events E] [--interval ...]
"""

from __future__ import annotations

import argparse
import socket
import sys

from harness.workloads.client import run_socket_client
from harness.workloads.events import EventLog
from harness.workloads.protocol import (
    bind_path,
    client_arguments,
    server_arguments,
)
from harness.workloads.stream import connect
from harness.workloads.tree import serve_frames


def serve(args: argparse.Namespace) -> int:
    events = EventLog(args.events)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    bind_path(listener, args.socket)
    listener.listen(1)
    events.emit("start", socket=args.socket)
    print(f"seqpacket server listening on {args.socket}", flush=True)
    while True:
        conn, _ = listener.accept()
        with conn:
            serve_frames(lambda: conn.recv(args.size), conn.send, events)


def client(args: argparse.Namespace) -> int:
    events = EventLog(args.events)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    bind_path(sock, args.socket)
    if not connect(sock, args.server, events):
        return 1
    print(f"seqpacket client {args.socket} -> {args.server}", flush=True)

    return run_socket_client(sock, events, args, stream=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.workloads.seqpacket")
    roles = parser.add_subparsers(dest="role", required=True)
    server_arguments(roles.add_parser("server"))
    client_arguments(roles.add_parser("client"))
    args = parser.parse_args(argv)
    return serve(args) if args.role == "server" else client(args)


if __name__ == "__main__":
    sys.exit(main())
