"""Echo pairs over two pipes (requests one way, replies the other).

    python -m harness.workloads.pipe tree [--events E] [--server-events SE] [--interval ...]
    python -m harness.workloads.pipe server --info F [--events E]
    python -m harness.workloads.pipe client --info F [--events E] [--interval ...]

``tree``: the parent makes the pipes and forks the server and the client. ``server`` and
``client`` are two trees: the server makes the pipes and writes its pid and their fds to
--info; the client opens the same pipes through ``/proc/PID/fd/N``, as any process allowed to
may. Frames are 1024 bytes, below PIPE_BUF: each write arrives whole.
"""

from __future__ import annotations

import argparse
import os
import select
import sys

from harness.workloads.client import run_client
from harness.workloads.events import EventLog
from harness.workloads.protocol import GREETING, frame
from harness.workloads.rendezvous import publish, read_published
from harness.workloads.tree import (
    loop_arguments,
    run_tree,
    serve_frames,
    tree_arguments,
)


def read_frame(fd: int, size: int, timeout: float | None = None) -> bytes:
    """A whole frame from a pipe or FIFO; b"" at end of file. Raises TimeoutError when no
    frame starts within timeout."""
    chunks = bytearray()
    while len(chunks) < size:
        if timeout is not None and not chunks:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                raise TimeoutError(f"no frame within {timeout:g} s")
        chunk = os.read(fd, size - len(chunks))
        if not chunk:
            return b""
        chunks += chunk
    return bytes(chunks)


def write_frame(fd: int, data: bytes) -> None:
    os.write(fd, data)  # at most PIPE_BUF: written whole or not at all


def serve_fds(req: int, rep: int, events: EventLog, size: int) -> int:
    return serve_frames(lambda: read_frame(req, size), lambda data: write_frame(rep, data), events)


def client_fds(req: int, rep: int, args: argparse.Namespace) -> int:
    events = EventLog(args.events)

    def send(seq: int) -> None:
        write_frame(req, frame(seq, GREETING, args.size))

    def recv(timeout: float) -> bytes:
        return read_frame(rep, args.size, timeout)

    return run_client(send, recv, events, args)


def tree(args: argparse.Namespace) -> int:
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()

    def server() -> int:
        os.close(req_w)
        os.close(rep_r)
        return serve_fds(req_r, rep_w, EventLog(args.server_events), args.size)

    def client() -> int:
        os.close(req_r)
        os.close(rep_w)
        return client_fds(req_w, rep_r, args)

    return run_tree("pipe", server, client, close=(req_r, req_w, rep_r, rep_w))


def server(args: argparse.Namespace) -> int:
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    # The server keeps every end open: the client opens its ends through /proc, which needs
    # them to exist, and a pipe with no writer would read as ended before the client came.
    events = EventLog(args.events)
    events.emit("start", fds=[req_r, req_w, rep_r, rep_w])
    publish(args.info, f"{os.getpid()} {req_w} {rep_r}")
    print(f"pipe server {os.getpid()}: requests on fd {req_r}, replies on fd {rep_w}", flush=True)
    return serve_fds(req_r, rep_w, events, args.size)


def client(args: argparse.Namespace) -> int:
    pid, req_fd, rep_fd = read_published(args.info).split()
    # Opening /proc/PID/fd/N of a pipe opens that pipe anew, in the mode asked for.
    req = os.open(f"/proc/{pid}/fd/{req_fd}", os.O_WRONLY)
    rep = os.open(f"/proc/{pid}/fd/{rep_fd}", os.O_RDONLY)
    print(f"pipe client: the pipes of pid {pid}", flush=True)
    return client_fds(req, rep, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.workloads.pipe")
    roles = parser.add_subparsers(dest="role", required=True)
    tree_arguments(roles.add_parser("tree"))
    for role in ("server", "client"):
        sub = roles.add_parser(role)
        sub.add_argument("--info", required=True, help="the server's pid and pipe fds")
        loop_arguments(sub)
    args = parser.parse_args(argv)
    return {"tree": tree, "server": server, "client": client}[args.role](args)


if __name__ == "__main__":
    sys.exit(main())
