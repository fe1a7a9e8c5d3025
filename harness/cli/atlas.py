"""The atlas's commands: atlas (which IPC survives CRIU) and inspect (will this dump)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from harness import forecast, matrix, migratability, report, scenario, survey
from harness.atlas import atlas_of
from harness.cli import options
from harness.criu import BACKENDS, get_backend
from harness.criu.options import NETWORK_LOCKS
from harness.errors import HarnessError, UsageError
from harness.plan import PLANS
from harness.report import RunReport

__all__ = ["add"]


def cmd_atlas(args: argparse.Namespace) -> int:
    """Take the atlas (or draw it from a run's results with --from), print it, write it."""
    if args.source is not None:
        run = RunReport.load(args.source)
        atlas = atlas_of(run)
    else:
        if os.geteuid() != 0:
            raise UsageError("CRIU needs root: run as root")
        out = args.out or matrix.DEFAULT_OUT.parent / "atlas" / time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())
        taking = survey.Survey(args.criu or (), args.mechanisms or (), args.plans == "all",
                               args.backend, args.iterations, bundle_into=out.resolve() / "artifacts")
        print(f"atlas: {len(taking.cells())} cell(s) into {out}", flush=True)
        atlas, run = taking.run(lambda line: print(line, flush=True))
        out.mkdir(parents=True, exist_ok=True)
        run.write(out / report.RESULTS)
        for path in atlas.write(out):
            print(f"wrote {path}")
    print(atlas.header())
    print("\n".join(atlas.table()))
    if args.markdown is not None:
        args.markdown.write_text(atlas.page())
        print(f"wrote {args.markdown}")
    acc = atlas.accuracy()
    if sum(acc.values()):
        print("inspect: " + ", ".join(f"{n} {k}" for k, n in acc.items()))
    return 0 if atlas.ok else 1


def cmd_inspect(args: argparse.Namespace) -> int:
    """Predict whether criu dump of each tree would be refused; never dumps."""
    if bool(args.pids) == bool(args.scenario):
        raise UsageError("inspect: give PIDs or --scenario NAME, one of them")
    if os.geteuid() != 0:
        raise UsageError("inspect reads other processes' /proc entries: run as root")
    extra = migratability.DumpOptions(args.ext_unix_sk, args.tcp_established, args.shell_job,
                                      args.link_remap, args.network_lock)
    backend = get_backend("cli", args.criu_binary)  # for its version: the cli needs no pycriu
    if args.scenario:
        predictions, options, result = forecast.inspect_scenario(
            scenario.find(args.scenario), backend, args.plan, extra)
        if not predictions:
            raise HarnessError(f"{args.scenario}: could not start it: {result.reason}")
    else:
        options = dataclasses.replace(extra, criu_version=backend.criu.version())
        predictions = migratability.predict(args.pids, options)
    verdict, _ = migratability.overall(predictions)
    if args.json:
        print(json.dumps({"verdict": str(verdict), "options": options.flags(),
                          "criu_version": options.criu_version,
                          "trees": [p.to_json() for p in predictions]}, indent=2))
    else:
        print("\n".join(migratability.report(predictions, options)))
    return INSPECT_EXIT[verdict]


INSPECT_EXIT = {
    migratability.Verdict.DUMPS: 0,
    migratability.Verdict.REFUSED: 1,
    migratability.Verdict.NO_OPINION: 3,
}


def add(commands: Any) -> None:
    """Add these commands to the command line's subparsers."""
    ins = commands.add_parser(
        "inspect", help="predict whether criu dump of a process tree would be refused, and why (never dumps)"
    )
    ins.add_argument("pids", nargs="*", type=options.positive, metavar="PID",
                     help="the root of each tree, in the order they would be dumped")
    ins.add_argument("--scenario", metavar="NAME",
                     help="start this scenario's workloads, inspect them, stop them")
    ins.add_argument("--plan", choices=list(PLANS), default=None,
                     help="with --scenario: its dump order (default: the scenario's plan)")
    for flag, what in (("--ext-unix-sk", "unix sockets with a peer outside the tree"),
                       ("--tcp-established", "established TCP connections"),
                       ("--shell-job", "a tree in the caller's session or terminal"),
                       ("--link-remap", "files still linked under another name")):
        ins.add_argument(flag, action="store_true", help=f"the dump would be given {flag}: {what}")
    ins.add_argument("--network-lock", choices=NETWORK_LOCKS, help="the dump's --network-lock")
    ins.add_argument("--json", action="store_true", help="the predictions as JSON")
    options.criu_binary(ins)
    ins.set_defaults(func=cmd_inspect)

    atl = commands.add_parser(
        "atlas", help="which IPC survives CRIU: every mechanism x plan x CRIU version, as a table"
    )
    atl.add_argument("--criu", nargs="+", metavar="PATH",
                     help="the CRIU binaries (default: criu on PATH and each under /opt/criu)")
    atl.add_argument("--mechanisms", nargs="+", metavar="NAME",
                     help="only these mechanisms (default: every scenario that names one)")
    atl.add_argument("--plans", choices=("own", "all"), default="own",
                     help="each scenario's own plans (default), or every plan")
    atl.add_argument("--backend", choices=sorted(BACKENDS), default="cli",
                     help="how to drive CRIU (default: cli, which needs no pycriu of each version)")
    atl.add_argument("--iterations", type=options.positive, default=1, help="migrations per cell")
    atl.add_argument("--out", type=Path, metavar="DIR",
                     help="where to write results.json, atlas.json, atlas.html, atlas.md "
                          "(default: reports/atlas/<date>)")
    atl.add_argument("--from", dest="source", type=Path, metavar="RESULTS",
                     help="draw the atlas from a run's results (a nightly's) instead of running")
    atl.add_argument("--markdown", type=Path, metavar="FILE",
                     help="also write the atlas page (docs/atlas.md) there")
    atl.set_defaults(func=cmd_atlas)
