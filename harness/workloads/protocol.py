"""The echo protocol: fixed-size frames carrying a sequence number and a text.

As in the original programs, every frame is a whole 1024-byte buffer; the number in front lets
the client tell a reply to this message from a late reply to an earlier one.
"""

from __future__ import annotations

import argparse
import os
import socket
import stat

FRAME_SIZE = 1024
GREETING = "How are you !!!"
REPLY = "OK,I got it!"


def frame(seq: int, text: str, size: int = FRAME_SIZE) -> bytes:
    data = f"{seq} {text}".encode()
    if len(data) > size:
        raise ValueError(f"frame of {len(data)} bytes does not fit in {size}")
    return data.ljust(size, b"\0")


def parse(data: bytes) -> tuple[int, str]:
    """(seq, text) of a frame; seq is -1 when the frame is not ours."""
    head, _, text = data.rstrip(b"\0").partition(b" ")
    try:
        return int(head), text.decode(errors="replace")
    except ValueError:
        return -1, data.decode(errors="replace")


def bind_path(sock: socket.socket, path: str) -> None:
    """Bind to path, replacing a stale socket file there (and nothing that is not a socket)."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    sock.bind(path)


def recv_exact(sock: socket.socket, size: int) -> bytes:
    """Read a whole frame from a stream socket; b"" when the peer closed it."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            return b""
        chunks += chunk
    return bytes(chunks)


def client_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--socket", required=True, help="the client's own socket path")
    parser.add_argument("--server", required=True, help="the server's socket path")
    parser.add_argument("--events", help="JSON-lines event log")
    parser.add_argument("--interval", type=float, default=0.01, help="seconds between messages")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for a reply")
    parser.add_argument("--size", type=int, default=FRAME_SIZE, help="frame size in bytes")
    parser.add_argument("--count", type=int, default=0, help="stop after N messages (0: never)")


def server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--socket", required=True, help="the server's socket path")
    parser.add_argument("--events", help="JSON-lines event log")
    parser.add_argument("--size", type=int, default=FRAME_SIZE, help="frame size in bytes")
