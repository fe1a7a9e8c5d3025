"""The nightly job's commands: matrix, merge, compare."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness import compare, matrix, rundir
from harness.cli import options
from harness.criu import BACKENDS
from harness.transport import TRANSPORTS

__all__ = ["add"]


def cmd_matrix(args: argparse.Namespace) -> int:
    night = matrix.Night(
        out=args.out,
        names=args.scenarios or (),
        backends=args.backends or list(BACKENDS),
        iterations=args.iterations,
        threshold=args.threshold,
        previous=args.previous,
        criu_binary=args.criu_binary,
        criu_timeout=args.criu_timeout,
        criu_fault=args.criu_fault,
        criu_binaries=args.criu or (),
        shard=args.shard,
        faults=args.faults,
        only_faults=args.only_faults,
        transports=args.transports,
        jobs=args.jobs,
    )
    try:
        return 0 if night.run(lambda line: print(line, flush=True)).ok else 1
    finally:
        rundir.prune(args.keep_max, lambda line: print(line, flush=True))


def cmd_merge(args: argparse.Namespace) -> int:
    night = matrix.merge_night(args.parts, args.out, args.previous, args.threshold,
                               lambda line: print(line, flush=True))
    return 0 if night.ok else 1


def cmd_compare(args: argparse.Namespace) -> int:
    result = compare.compare_paths(args.old, args.new, args.threshold)
    for line in result.lines():
        print(line)
    print(result.summary())
    return 1 if result.regressions else 0


def _threshold(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threshold", type=options.fraction, default=compare.DEFAULT_THRESHOLD,
                        help="median downtime growth that counts as a regression "
                             "(default: 0.2 = +20%%)")


def _published(parser: argparse.ArgumentParser) -> None:
    """Where a night goes, and what it is compared with."""
    parser.add_argument("--out", type=Path, default=matrix.DEFAULT_OUT, metavar="DIR",
                        help="base directory of the dated result directories "
                             f"(default: {matrix.DEFAULT_OUT})")
    parser.add_argument("--previous", type=Path, metavar="DIR",
                        help="compare with these results (default: the latest dated directory "
                             "in --out)")
    _threshold(parser)


def add(commands: Any) -> None:
    """Add these commands to the command line's subparsers."""
    mtx = commands.add_parser(
        "matrix", help="the nightly matrix: every scenario x backend x plan, into a dated directory"
    )
    mtx.add_argument("--scenarios", nargs="+", metavar="SCENARIO",
                     help="only these built-in names or scenario files (default: every built-in)")
    mtx.add_argument("--backends", nargs="+", choices=sorted(BACKENDS), metavar="BACKEND",
                     help=f"only these backends (default: {' '.join(BACKENDS)})")
    mtx.add_argument("--iterations", type=options.positive, default=1,
                     help="migrate each running workload N times")
    _published(mtx)
    options.keep_max(mtx)
    mtx.add_argument("--criu", nargs="+", metavar="PATH",
                     help="run the matrix once per CRIU binary (a CRIU failing criu check here "
                          "gives results that say so)")
    mtx.add_argument("--shard", type=options.shard, metavar="I/N",
                     help="run only shard I of N of the matrix (merge the shards with `merge`)")
    mtx.add_argument("--faults", type=options.positive, nargs="*", metavar="CODE",
                     help="add the fault matrix: each CRIU fault code (default: every one in "
                          "harness/faults.py) x backend, each checked against what it must do")
    mtx.add_argument("--only-faults", action="store_true",
                     help="run the fault matrix alone (with --faults' codes, if given)")
    mtx.add_argument("--transports", nargs="+", choices=TRANSPORTS, default=list(TRANSPORTS),
                     metavar="TRANSPORT",
                     help="local runs every plan; page-server and lazy run each scenario that "
                          f"migrates, with --isolation ns (default: {' '.join(TRANSPORTS)})")
    mtx.add_argument("-j", "--jobs", type=options.positive, default=1, metavar="N",
                     help="run N results at once (default 1)")
    options.criu_binary(mtx)
    options.criu_action(mtx)
    mtx.set_defaults(func=cmd_matrix)

    mrg = commands.add_parser("merge", help="merge the shards of a night into one night, and publish it")
    mrg.add_argument("parts", nargs="+", type=Path, metavar="RESULTS",
                     help="each shard's results.json, or the directory holding one")
    _published(mrg)
    mrg.set_defaults(func=cmd_merge)

    cmp = commands.add_parser("compare", help="compare two runs' results; exit 1 on a regression")
    cmp.add_argument("old", type=Path, metavar="OLD", help="results.json, or a directory holding one")
    cmp.add_argument("new", type=Path, metavar="NEW", help="results.json, or a directory holding one")
    _threshold(cmp)
    cmp.set_defaults(func=cmd_compare)
