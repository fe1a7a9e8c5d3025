"""The ``criu-harness`` command line: a thin front over the library, one module per family
of commands (migrate: run, list, restore, bundle, check; nightly: matrix, merge, compare;
atlas: atlas, inspect; cleanup), each adding its own subcommands.

Bad usage gets one line on stderr and exit status 2; a run exits 0 when every scenario ended as
expected and 1 otherwise.
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from harness import gpu
from harness.cli import atlas, cleanup, migrate, nightly, options
from harness.cli.migrate import DEFAULT_SCENARIOS
from harness.errors import HarnessError, UsageError

__all__ = ["DEFAULT_SCENARIOS", "build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage dump: the user typed something wrong, not a traceback's worth.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="criu-harness",
                     description="A test harness for CRIU live migration: real checkpoints, "
                                 "real restores, verified.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for family in (migrate, nightly, atlas, cleanup):
        family.add(commands)
    return parser


# A file the user named that is not there, or not readable: bad input, not a failure.
_BAD_INPUT = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.EROFS}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "keep_max", 0) is None:
            args.keep_max = options.keep_max_default()
        func: Callable[[argparse.Namespace], int] = args.func
        if getattr(args, "cuda_checkpoint", None):
            gpu.use_cuda_checkpoint(args.cuda_checkpoint)
        return func(args)
    except UsageError as exc:
        print(f"criu-harness: {exc}", file=sys.stderr)
        return 2
    except HarnessError as exc:
        print(f"criu-harness: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"criu-harness: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2 if exc.errno in _BAD_INPUT else 1
    except KeyboardInterrupt:
        print("criu-harness: interrupted; every workload was stopped", file=sys.stderr)
        return 130

