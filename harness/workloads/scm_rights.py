"""File descriptors in flight: an echo pair inside one tree whose every request is a pipe,
passed over a seqpacket socketpair with SCM_RIGHTS, holding the request frame.

    python -m harness.workloads.scm_rights [--events E] [--server-events SE] [--window N]
        [--server-delay S] [--interval ...]

The client keeps --window requests outstanding and the server takes one per --server-delay,
so at any moment (a dump included) requests wait in the server's socket queue, each with a
pipe in flight that nobody holds but the queue.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections import OrderedDict

from harness.workloads.events import EventLog
from harness.workloads.pipe import read_frame
from harness.workloads.protocol import GREETING, REPLY, frame, parse
from harness.workloads.tree import run_tree, tree_arguments

TAG = b"fd"


def send_request(sock: socket.socket, data: bytes) -> None:
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, data)
        socket.send_fds(sock, [TAG], [read_end])
    finally:
        os.close(read_end)
        os.close(write_end)


def take_request(sock: socket.socket, size: int) -> bytes:
    msg, fds, _, _ = socket.recv_fds(sock, len(TAG), 1)
    if not msg:
        return b""
    if not fds:
        return frame(-1, "request without a file descriptor", size)
    try:
        return read_frame(fds[0], size, timeout=1.0)
    finally:
        for fd in fds:
            os.close(fd)


def serve(sock: socket.socket, events: EventLog, args: argparse.Namespace) -> int:
    while True:
        time.sleep(args.server_delay)  # slower than the client: requests queue up
        try:
            data = take_request(sock, args.size)
        except (OSError, TimeoutError) as exc:
            events.emit("error", 0, error=f"request: {exc}")
            continue
        if not data:
            events.emit("error", 0, error="request channel closed")
            return 1
        seq, _ = parse(data)
        events.emit("received", seq)
        sock.send(frame(seq, REPLY, args.size))


def windowed_client(sock: socket.socket, events: EventLog, args: argparse.Namespace) -> int:
    """Like run_client, with up to --window requests outstanding; the same events, so the
    same accounting (a reply to an earlier request than the oldest awaited is ``late``)."""
    events.emit("start", text=GREETING, interval=args.interval, timeout=args.timeout,
                window=args.window)
    outstanding: OrderedDict[int, float] = OrderedDict()  # seq -> when sent (monotonic)
    seq = 0
    while not args.count or seq < args.count or outstanding:
        while len(outstanding) < args.window and (not args.count or seq < args.count):
            seq += 1
            events.emit("sent", seq)
            try:
                send_request(sock, frame(seq, GREETING, args.size))
            except OSError as exc:
                events.emit("error", seq, error=f"send: {exc}")
                continue
            outstanding[seq] = time.monotonic()
        if not outstanding:
            time.sleep(args.interval)
            continue
        oldest, sent_at = next(iter(outstanding.items()))
        remaining = sent_at + args.timeout - time.monotonic()
        if remaining <= 0:
            events.emit("timeout", oldest)
            del outstanding[oldest]
            continue
        sock.settimeout(remaining)
        try:
            data = sock.recv(args.size)
        except (TimeoutError, socket.timeout):
            continue
        except OSError as exc:
            events.emit("error", oldest, error=f"recv: {exc}")
            continue
        if not data:
            events.emit("error", oldest, error="recv: connection closed by the server")
            return 1
        rseq, _ = parse(data)
        if rseq in outstanding:
            rtt = (time.monotonic() - outstanding.pop(rseq)) * 1e3
            events.emit("received", rseq, rtt_ms=round(rtt, 3))
        else:
            events.emit("late", rseq)
        time.sleep(args.interval)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.workloads.scm_rights")
    tree_arguments(parser)
    parser.add_argument("--window", type=int, default=4, help="requests outstanding at once")
    parser.add_argument("--server-delay", type=float, default=0.02,
                        help="seconds the server waits before taking each request")
    args = parser.parse_args(argv)
    server_end, client_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

    def server() -> int:
        client_end.close()
        return serve(server_end, EventLog(args.server_events), args)

    def client() -> int:
        server_end.close()
        return windowed_client(client_end, EventLog(args.events), args)

    return run_tree("scm-rights", server, client, close=(server_end, client_end))


if __name__ == "__main__":
    sys.exit(main())
