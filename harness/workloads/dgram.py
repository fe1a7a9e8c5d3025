"""Datagram echo pair over AF_UNIX (SOCK_DGRAM): connectionless, so CRIU can migrate each side.

    python -m harness.workloads.dgram server --socket S [--events E] [--ballast-mb N]
    python -m harness.workloads.dgram client --socket C --server S [--events E] [--interval ...]
"""

from __future__ import annotations

import argparse
import socket
import sys

from harness.workloads.client import run_client
from harness.workloads.events import EventLog
from harness.workloads.protocol import (
    GREETING,
    REPLY,
    bind_path,
    client_arguments,
    frame,
    parse,
    server_arguments,
)

PAGE = 4096


def ballast(megabytes: int) -> bytearray:
    """N MiB of memory, every page written: resident pages CRIU must dump and restore (an
    untouched allocation would be no pages at all)."""
    memory = bytearray(megabytes << 20)
    memory[::PAGE] = b"\x01" * len(range(0, len(memory), PAGE))
    return memory


def serve(args: argparse.Namespace) -> int:
    # Before binding: the harness takes the bound socket as "ready", ballast included.
    held = ballast(args.ballast_mb) if args.ballast_mb else None  # noqa: F841 (kept alive)
    events = EventLog(args.events)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    bind_path(sock, args.socket)
    events.emit("start", socket=args.socket)
    print(f"datagram server listening on {args.socket}", flush=True)
    while True:
        data, peer = sock.recvfrom(args.size)
        seq, _ = parse(data)
        events.emit("received", seq, peer=peer)
        if not peer:
            # A datagram without a sender address cannot be answered. CRIU restores queued
            # datagrams this way: it does not save their sender.
            events.emit("error", seq, error="no sender address: cannot reply")
            continue
        try:
            sock.sendto(frame(seq, REPLY, args.size), peer)
        except OSError as exc:  # the client may be gone (dumped, or not yet restored)
            events.emit("error", seq, error=f"sendto {peer}: {exc}")


def client(args: argparse.Namespace) -> int:
    events = EventLog(args.events)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    # Bound, so the server has an address to answer; never connect()ed, so it has no peer.
    bind_path(sock, args.socket)
    print(f"datagram client {args.socket} -> {args.server}", flush=True)

    def send(seq: int) -> None:
        sock.sendto(frame(seq, GREETING, args.size), args.server)

    def recv(timeout: float) -> bytes:
        sock.settimeout(timeout)
        return sock.recv(args.size)

    return run_client(send, recv, events, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.workloads.dgram")
    roles = parser.add_subparsers(dest="role", required=True)
    server = roles.add_parser("server")
    server_arguments(server)
    server.add_argument("--ballast-mb", type=int, default=0, metavar="N",
                        help="hold N MiB of touched memory (to measure migrations by size)")
    client_arguments(roles.add_parser("client"))
    args = parser.parse_args(argv)
    return serve(args) if args.role == "server" else client(args)


if __name__ == "__main__":
    sys.exit(main())
