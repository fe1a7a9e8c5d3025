"""An echo pair over two POSIX message queues (requests, replies), each role in its own tree.

    python -m harness.workloads.mqueue server --dir D [--events E]
    python -m harness.workloads.mqueue client --dir D [--events E] [--interval ...]

The queues are named after the run directory D (``/<basename of D>.req`` and ``.rep``), so
concurrent runs never meet. The client removes the names once it has both queues open: the
queues live on while open, and no name outlives the run.
"""

from __future__ import annotations

import argparse
import os
import sys

from harness.workloads import libc
from harness.workloads.client import run_client
from harness.workloads.events import EventLog
from harness.workloads.protocol import GREETING, frame
from harness.workloads.tree import loop_arguments, serve_frames


def names(directory: str) -> tuple[str, str]:
    base = "/" + os.path.basename(os.path.normpath(directory))
    return f"{base}.req", f"{base}.rep"


def serve(args: argparse.Namespace) -> int:
    requests, replies = names(args.dir)
    for name in (requests, replies):
        libc.mq_unlink(name)  # a stale queue of a killed run with this very name
    req = libc.mq_open(requests, create=True, msgsize=args.size)
    rep = libc.mq_open(replies, create=True, msgsize=args.size)
    print(f"mqueue server: requests on {requests}, replies on {replies}", flush=True)
    events = EventLog(args.events)
    return serve_frames(
        lambda: libc.mq_receive(req, args.size), lambda data: libc.mq_send(rep, data), events
    )


def client(args: argparse.Namespace) -> int:
    requests, replies = names(args.dir)
    req = libc.mq_open(requests, create=False)
    rep = libc.mq_open(replies, create=False)
    for name in (requests, replies):
        libc.mq_unlink(name)
    print(f"mqueue client: {requests} {replies}", flush=True)

    def send(seq: int) -> None:
        libc.mq_send(req, frame(seq, GREETING, args.size))

    def recv(timeout: float) -> bytes:
        return libc.mq_receive(rep, args.size, timeout)

    return run_client(send, recv, EventLog(args.events), args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.workloads.mqueue")
    roles = parser.add_subparsers(dest="role", required=True)
    for role in ("server", "client"):
        sub = roles.add_parser(role)
        sub.add_argument("--dir", required=True, help="the run directory: names the queues")
        loop_arguments(sub)
    args = parser.parse_args(argv)
    return serve(args) if args.role == "server" else client(args)


if __name__ == "__main__":
    sys.exit(main())
