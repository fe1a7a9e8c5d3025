"""The command that ends what killed runs left: cleanup."""

from __future__ import annotations

import argparse
import os
from typing import Any

from harness import cleanup
from harness.errors import UsageError

__all__ = ["add"]


def cmd_cleanup(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise UsageError("cleanup needs root: the runs' cgroups and processes are root's")
    done = cleanup.cleanup(include_live=args.all, echo=lambda line: print(line, flush=True))
    return 0 if all(c.ok for c in done) else 1


def add(commands: Any) -> None:
    """Add this command to the command line's subparsers."""
    cln = commands.add_parser(
        "cleanup", help="end every run a harness left behind: kill what is in its cgroup, remove it"
    )
    cln.add_argument("--all", action="store_true",
                     help="the runs of harnesses still running too (default: only those whose "
                          "harness is gone)")
    cln.set_defaults(func=cmd_cleanup)
