"""The commands that migrate and reproduce: run, list, restore, bundle, check."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from harness import artifacts, parallel, preflight, report, reproduce, rundir, scenario
from harness.cli import options
from harness.criu import BACKENDS, get_backend
from harness.errors import UsageError
from harness.plan import PLANS
from harness.receiver import Receiver
from harness.report import RunReport
from harness.result import Keep, Outcome, ScenarioResult
from harness.runner import ScenarioRun
from harness.wire import DEFAULT_PORT, parse_address

__all__ = ["DEFAULT_SCENARIOS", "add"]

# stream-tree right after stream-echo: the same pair, forked from one parent, migrates.
DEFAULT_SCENARIOS = ("dgram-echo", "stream-echo", "stream-tree")


def cmd_run(args: argparse.Namespace) -> int:
    names = args.scenarios or list(DEFAULT_SCENARIOS)
    scenarios = [scenario.find(n) for n in names]  # all validated before anything starts
    if args.report:
        rundir.check_output_dir(args.report, "--report")
    if os.geteuid() != 0:
        raise UsageError("CRIU needs root: run as root (criu-harness check tells what else is missing)")
    if args.destination and args.jobs > 1:
        raise UsageError("--destination takes one run at a time (a receiver serves one): "
                         "drop -j")
    backend = get_backend(args.backend, args.criu_binary, args.criu_timeout, args.criu_fault)
    plans: list[str | None] = list(PLANS) if args.plan == "all" else [args.plan]
    run = RunReport(criu_version=backend.criu.version(), backend=backend.name)
    print(report.header(run), flush=True)
    # Kept runs stay where they ran (replayable); the report gets a bundle of each.
    bundle_into = args.report.resolve() / "artifacts" if args.report else None
    options = dict(
        iterations=args.iterations,
        keep=Keep.ALWAYS if args.keep else Keep.FAILED,
        bundle_into=bundle_into,
        isolation=args.isolation,
        transport=args.transport,
        safe_handover=args.safe_handover,
        destination=args.destination,
    )
    say = _note
    # Every run is set up (and so checked: a plan the scenario cannot take, lazy without a
    # PID namespace) before the first starts.
    runs = [ScenarioRun(s, backend, plan=plan, say=say, **options)
            for s in scenarios for plan in plans]
    # One column for every name[variant], so the lines line up side by side.
    width = max([16, *(len(r.scenario.name) + len(_variant(r)) + 2 for r in runs)])

    def show(result: ScenarioResult) -> None:
        print(report.line(result, width), flush=True)
        if (not result.ok or result.outcome is Outcome.SKIPPED) and result.reason:
            print(f"    why: {result.reason}", flush=True)

    try:
        if args.jobs > 1:
            jobs = [parallel.Job(r.scenario, backend.name, args.criu_binary, args.criu_timeout,
                                 args.criu_fault, {"plan": r.plan.name, "say": _note, **options})
                    for r in runs]
            run.scenarios += parallel.run_jobs(jobs, args.jobs, lambda _, result: show(result))
        else:
            for scenario_run in runs:
                result = scenario_run.run()
                run.scenarios.append(result)
                show(result)
    finally:
        # An interrupted run keeps its directory too: this is where they stop piling up.
        rundir.prune(args.keep_max, lambda line: print(line, flush=True))
    good = sum(1 for s in run.scenarios if s.ok)
    print(f"{good} of {len(run.scenarios)} scenario(s) as expected")
    if args.report:
        print(f"results: {report.write(run, args.report)}")
    return 0 if run.ok else 1


def _note(line: str) -> None:
    print(f"note: {line}", flush=True)


def _variant(run: ScenarioRun) -> str:
    """What report.line shows in brackets after the scenario's name."""
    probe = ScenarioResult(name="", expected="", plan=run.plan.name,
                           transport=run.transport, isolation=str(run.isolation))
    return probe.variant


def cmd_list(args: argparse.Namespace) -> int:
    problems = 0
    loaded = []
    for path in scenario.builtin_paths():
        try:
            loaded.append(scenario.load(path))
        except scenario.ScenarioError as exc:
            print(exc, file=sys.stderr)
            problems += 1
    width = max([16, *(len(s.name) for s in loaded)])
    for s in loaded:
        expect = s.expect.outcome + (f" ({s.expect.action})" if s.expect.outcome == "fails" else "")
        print(f"{s.name:<{width}} {expect:<16} {s.description}")
    return 2 if problems else 0


def cmd_restore(args: argparse.Namespace) -> int:
    attempts = reproduce.retry_restore(
        args.dir, backend=args.backend, role=args.role, cycle=args.cycle, binary=args.criu_binary,
        timeout=args.criu_timeout,
    )
    print("\n".join(reproduce.describe(attempts)))
    return 0 if all(a.ok for a in attempts) else 1


def cmd_bundle(args: argparse.Namespace) -> int:
    print(artifacts.bundle(args.dir, args.output))
    return 0


def cmd_receive(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise UsageError("CRIU needs root: run as root")
    try:
        host, port = parse_address(args.listen, "--listen")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return Receiver(host, port, args.criu_binary, lambda line: print(line, flush=True)).serve(
        once=args.once)


def cmd_check(args: argparse.Namespace) -> int:
    pre = preflight.run(args.criu_binary)
    print(preflight.table(pre))
    return 0 if pre.ok else 1


def add(commands: Any) -> None:
    """Add these commands to the command line's subparsers."""
    _add_run(commands)
    _add_others(commands)


def _add_run(commands: Any) -> None:
    run = commands.add_parser("run", help="migrate scenarios and verify them")
    run.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                     help=f"built-in names or scenario files (default: {' '.join(DEFAULT_SCENARIOS)})")
    run.add_argument("--backend", choices=sorted(BACKENDS), default="rpc",
                     help="how to drive CRIU: rpc (pycriu) or cli (the criu binary)")
    run.add_argument("--plan", choices=[*PLANS, "all"], default=None,
                     help="migration plan (default: the scenario's own; all: every plan)")
    run.add_argument("--iterations", type=options.positive, default=1,
                     help="migrate the same running workload N times")
    run.add_argument("--report", type=Path, metavar="DIR",
                     help="write DIR/results.json, and keep failures' artifacts in DIR/artifacts")
    run.add_argument("--keep", action="store_true", help="keep artifacts of passing runs too")
    options.keep_max(run)
    options.criu_binary(run)
    options.criu_action(run)
    options.isolation(run)
    options.transport(run)
    run.add_argument("--safe-handover", action="store_true",
                     help="keep each source stopped (--leave-stopped) until its copy is restored "
                          "and verified; on a failed restore kill the copies and resume the "
                          "sources (implies --isolation ns)")
    run.add_argument("--destination", metavar="HOST[:PORT]",
                     help="migrate to another machine running `criu-harness receive` there: "
                          "the pages go to its page servers, it restores and verifies "
                          f"(implies --transport page-server; port {DEFAULT_PORT} by default)")
    run.add_argument("-j", "--jobs", type=options.positive, default=1, metavar="N",
                     help="run N scenarios at once, each in a process of its own (default 1)")
    run.set_defaults(func=cmd_run)


def _add_others(commands: Any) -> None:
    """list, restore, bundle, receive, check."""
    lst = commands.add_parser("list", help="list the built-in scenarios")
    lst.set_defaults(func=cmd_list)

    rst = commands.add_parser("restore", help="retry the restore from a kept run's images")
    rst.add_argument("dir", type=Path, metavar="DIR",
                     help="a kept run directory, or an unpacked bundle")
    rst.add_argument("--backend", choices=sorted(BACKENDS), default=None,
                     help="how to drive CRIU (default: as the run did)")
    rst.add_argument("--role", help="restore only this role (default: every role, in the run's order)")
    rst.add_argument("--cycle", type=options.positive, help="which migration's images (default: the last)")
    rst.add_argument("--criu-timeout", type=options.seconds, metavar="SECONDS",
                     help="kill a restore that runs longer (default: as the run's restore had it)")
    options.criu_binary(rst)
    rst.set_defaults(func=cmd_restore)

    bnd = commands.add_parser("bundle", help="pack a kept run directory into one .tar.gz")
    bnd.add_argument("dir", type=Path, metavar="DIR", help="a kept run directory")
    bnd.add_argument("-o", "--output", type=Path, metavar="FILE",
                     help="the bundle to write (default: DIR.tar.gz)")
    bnd.set_defaults(func=cmd_bundle)

    rcv = commands.add_parser(
        "receive", help="be the destination of `run --destination` from another machine")
    rcv.add_argument("--listen", required=True, metavar="ADDR[:PORT]",
                     help=f"the address (a private network's) to take runs on (port "
                          f"{DEFAULT_PORT} by default); the page servers listen there too")
    rcv.add_argument("--once", action="store_true",
                     help="take one run, then exit with its status (default: until Ctrl-C)")
    options.criu_binary(rcv)
    rcv.set_defaults(func=cmd_receive)

    chk = commands.add_parser("check", help="can migrations run here? root, criu check, features")
    options.criu_binary(chk)
    chk.set_defaults(func=cmd_check)
