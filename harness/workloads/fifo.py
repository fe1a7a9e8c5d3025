"""Echo pairs over two named pipes (FIFOs) in a directory: requests one way, replies the other.

    python -m harness.workloads.fifo tree --dir D [--events E] [--server-events SE] [--interval ...]
    python -m harness.workloads.fifo server --dir D [--events E]
    python -m harness.workloads.fifo client --dir D [--events E] [--interval ...]

``tree``: the parent makes the FIFOs and forks both roles; ``server``/``client``: two trees,
which meet at the FIFOs' paths. The server opens both read-write, so neither of its opens
waits for the client, and the client's opens (write-only, read-only) find a peer at once.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys

from harness.workloads.events import EventLog
from harness.workloads.pipe import client_fds, serve_fds
from harness.workloads.tree import loop_arguments, run_tree, tree_arguments

REQUESTS = "requests.fifo"
REPLIES = "replies.fifo"


def make_fifos(directory: str) -> tuple[str, str]:
    paths = (os.path.join(directory, REQUESTS), os.path.join(directory, REPLIES))
    for path in paths:
        try:
            if stat.S_ISFIFO(os.lstat(path).st_mode):
                os.unlink(path)  # a stale FIFO from an earlier run: never anything else
        except FileNotFoundError:
            pass
        os.mkfifo(path, 0o600)
    return paths


def serve(directory: str, events: EventLog, size: int) -> int:
    requests, replies = (os.path.join(directory, n) for n in (REQUESTS, REPLIES))
    req = os.open(requests, os.O_RDWR)
    rep = os.open(replies, os.O_RDWR)
    print(f"fifo server: requests on {requests}, replies on {replies}", flush=True)
    return serve_fds(req, rep, events, size)


def client(directory: str, args: argparse.Namespace) -> int:
    req = os.open(os.path.join(directory, REQUESTS), os.O_WRONLY)
    rep = os.open(os.path.join(directory, REPLIES), os.O_RDONLY)
    print(f"fifo client: {directory}", flush=True)
    return client_fds(req, rep, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.workloads.fifo")
    roles = parser.add_subparsers(dest="role", required=True)
    for role in ("tree", "server", "client"):
        sub = roles.add_parser(role)
        sub.add_argument("--dir", required=True, help="where the FIFOs are")
        (tree_arguments if role == "tree" else loop_arguments)(sub)
    args = parser.parse_args(argv)
    if args.role == "tree":
        make_fifos(args.dir)
        return run_tree(
            "fifo",
            lambda: serve(args.dir, EventLog(args.server_events), args.size),
            lambda: client(args.dir, args),
        )
    if args.role == "server":
        make_fifos(args.dir)
        return serve(args.dir, EventLog(args.events), args.size)
    return client(args.dir, args)


if __name__ == "__main__":
    sys.exit(main())
