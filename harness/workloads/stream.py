"""Stream echo pair over AF_UNIX (SOCK_STREAM): the connection CRIU cannot cut in half.

    python -m harness.workloads.stream server --socket S [--events E]
    python -m harness.workloads.stream client --socket C --server S [--events E] [--interval ...]
"""

from __future__ import annotations

import argparse
import socket
import sys
import time

from harness.workloads.client import run_socket_client
from harness.workloads.events import EventLog
from harness.workloads.protocol import (
    REPLY,
    bind_path,
    client_arguments,
    frame,
    parse,
    recv_exact,
    server_arguments,
)

CONNECT_TIMEOUT_S = 5.0


def serve(args: argparse.Namespace) -> int:
    events = EventLog(args.events)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bind_path(listener, args.socket)
    listener.listen(1)
    events.emit("start", socket=args.socket)
    print(f"stream server listening on {args.socket}", flush=True)
    while True:
        conn, _ = listener.accept()
        with conn:
            while True:
                data = recv_exact(conn, args.size)
                if not data:
                    break  # the client left: wait for the next one
                seq, _ = parse(data)
                events.emit("received", seq)
                conn.sendall(frame(seq, REPLY, args.size))


def connect(sock: socket.socket, path: str, events: EventLog) -> bool:
    """Connect, retrying while the server is not yet listening; False when it never does."""
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while True:
        try:
            sock.connect(path)
            return True
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            if time.monotonic() >= deadline:
                events.emit("error", 0, error=f"connect {path}: {exc}")
                print(f"cannot connect to {path}: {exc}", file=sys.stderr, flush=True)
                return False
            time.sleep(0.05)


def client(args: argparse.Namespace) -> int:
    events = EventLog(args.events)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bind_path(sock, args.socket)
    if not connect(sock, args.server, events):
        return 1
    print(f"stream client {args.socket} -> {args.server}", flush=True)

    return run_socket_client(sock, events, args, stream=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.workloads.stream")
    roles = parser.add_subparsers(dest="role", required=True)
    server_arguments(roles.add_parser("server"))
    client_arguments(roles.add_parser("client"))
    args = parser.parse_args(argv)
    return serve(args) if args.role == "server" else client(args)


if __name__ == "__main__":
    sys.exit(main())
