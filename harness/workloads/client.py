"""The client loop both transports share: send a numbered message, wait for its reply."""

from __future__ import annotations

import argparse
import socket
import time
from collections.abc import Callable
from typing import Any

from harness.workloads.events import EventLog
from harness.workloads.protocol import GREETING, frame, parse, recv_exact


def run_client(
    send: Callable[[int], None],
    recv: Callable[[float], bytes],
    events: EventLog,
    args: argparse.Namespace,
    on_reply: Callable[[int, str], dict[str, Any]] | None = None,
) -> int:
    """Round trips until --count (or forever). A reply that does not come within --timeout is
    logged as a timeout and the loop goes on; if it comes later it is logged as ``late``, so the
    harness can tell a slow reply from a lost one. ``on_reply(seq, text)``, if given, sees each
    reply first and returns fields to log with it."""
    events.emit("start", text=GREETING, interval=args.interval, timeout=args.timeout)
    seq = 0
    while not args.count or seq < args.count:
        seq += 1
        sent_at = time.monotonic()
        events.emit("sent", seq)
        try:
            send(seq)
        except OSError as exc:
            events.emit("error", seq, error=f"send: {exc}")
            time.sleep(args.interval)
            continue
        deadline = sent_at + args.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                events.emit("timeout", seq)
                break
            try:
                data = recv(remaining)
            except (TimeoutError, socket.timeout):
                events.emit("timeout", seq)
                break
            except OSError as exc:
                events.emit("error", seq, error=f"recv: {exc}")
                break
            if not data:
                events.emit("error", seq, error="recv: connection closed by the server")
                return 1
            rseq, text = parse(data)
            extra = on_reply(rseq, text) if on_reply is not None else {}
            if rseq == seq:
                rtt_ms = round((time.monotonic() - sent_at) * 1e3, 3)
                events.emit("received", seq, rtt_ms=rtt_ms, **extra)
                break
            events.emit("late", rseq, **extra)
        time.sleep(args.interval)
    return 0


def run_socket_client(
    sock: socket.socket, events: EventLog, args: argparse.Namespace, stream: bool
) -> int:
    """run_client over a connected socket: a byte stream (frames read whole), or one that
    keeps message boundaries (seqpacket, a connected datagram socket)."""

    def send(seq: int) -> None:
        sock.settimeout(None)  # the last recv's timeout must not cut a send short
        data = frame(seq, GREETING, args.size)
        if stream:
            sock.sendall(data)
        else:
            sock.send(data)

    def recv(timeout: float) -> bytes:
        sock.settimeout(timeout)
        return recv_exact(sock, args.size) if stream else sock.recv(args.size)

    return run_client(send, recv, events, args)
