"""The ``criu-harness`` command line: a thin front over the library.

Bad usage gets one line on stderr and exit status 2; a run exits 0 when every scenario ended as
expected and 1 otherwise.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from harness import (
    artifacts,
    compare,
    gpu,
    matrix,
    parallel,
    preflight,
    report,
    reproduce,
    rundir,
    scenario,
)
from harness.criu import BACKENDS, DEFAULT_TIMEOUT_S, get_backend
from harness.errors import HarnessError, UsageError
from harness.isolation import DEFAULT_ISOLATION, Isolation
from harness.plan import PLANS
from harness.transport import TRANSPORTS
from harness.result import Keep, Outcome, RunReport, ScenarioResult
from harness.runner import ScenarioRun

# stream-tree right after stream-echo: the same pair, forked from one parent, migrates.
DEFAULT_SCENARIOS = ("dgram-echo", "stream-echo", "stream-tree")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage dump: the user typed something wrong, not a traceback's worth.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _run(args: argparse.Namespace) -> int:
    names = args.scenarios or list(DEFAULT_SCENARIOS)
    scenarios = [scenario.find(n) for n in names]  # all validated before anything starts
    if args.report:
        rundir.check_output_dir(args.report, "--report")
    if os.geteuid() != 0:
        raise UsageError("CRIU needs root: run as root (criu-harness check tells what else is missing)")
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


def _list(args: argparse.Namespace) -> int:
    problems = 0
    for path in scenario.builtin_paths():
        try:
            s = scenario.load(path)
        except scenario.ScenarioError as exc:
            print(exc, file=sys.stderr)
            problems += 1
            continue
        expect = s.expect.outcome + (f" ({s.expect.action})" if s.expect.outcome == "fails" else "")
        print(f"{s.name:<16} {expect:<16} {s.description}")
    return 2 if problems else 0


def _restore(args: argparse.Namespace) -> int:
    attempts = reproduce.retry_restore(
        args.dir, backend=args.backend, role=args.role, cycle=args.cycle, binary=args.criu_binary
    )
    print("\n".join(reproduce.describe(attempts)))
    return 0 if all(a.ok for a in attempts) else 1


def _bundle(args: argparse.Namespace) -> int:
    print(artifacts.bundle(args.dir, args.output))
    return 0


def _check(args: argparse.Namespace) -> int:
    pre = preflight.run(args.criu_binary)
    print(preflight.table(pre))
    return 0 if pre.ok else 1


def _matrix(args: argparse.Namespace) -> int:
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
        transports=args.transports,
        jobs=args.jobs,
    )
    try:
        return 0 if night.run(lambda line: print(line, flush=True)).ok else 1
    finally:
        rundir.prune(args.keep_max, lambda line: print(line, flush=True))


def _compare(args: argparse.Namespace) -> int:
    result = compare.compare_paths(args.old, args.new, args.threshold)
    for line in result.lines():
        print(line)
    print(result.summary())
    return 1 if result.regressions else 0


def _at_least(
    kind: type[int] | type[float], minimum: float, above: bool = False
) -> Callable[[str], float]:
    """An argparse type: a finite number of kind, at least minimum (above it, if above), with a
    one-line complaint."""
    name = "a whole number" if kind is int else "a number"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {name}: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
        if value < minimum or (above and value == minimum):
            bound = "greater than" if above else "at least"
            raise argparse.ArgumentTypeError(f"must be {bound} {minimum:g}, not {value}")
        return value

    return parse


_positive = _at_least(int, 1)
_count = _at_least(int, 0)
_fraction = _at_least(float, 0)
_seconds = _at_least(float, 0, above=True)


def _keep_max_default() -> int:
    """--keep-max's default: $CRIU_HARNESS_KEEP_MAX, else DEFAULT_KEEP_MAX."""
    text = os.environ.get(rundir.KEEP_MAX_ENV)
    if text is None:
        return rundir.DEFAULT_KEEP_MAX
    try:
        return int(_count(text))
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"${rundir.KEEP_MAX_ENV}: {exc}") from None


def _criu_binary(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--criu-binary", metavar="PATH", help="the criu binary (default: criu on PATH)")
    parser.add_argument("--cuda-checkpoint", metavar="PATH",
                        help="NVIDIA's cuda-checkpoint for CRIU's CUDA plugin (default: on PATH)")


def _criu_action(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--criu-timeout", type=_seconds, metavar="SECONDS",
                        help="kill a CRIU action that runs longer, and roll back (default: the "
                             f"scenario's [criu] timeout, else {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--criu-fault", type=_positive, metavar="N",
                        help="CRIU fault injection: CRIU_FAULT=N for every CRIU action (1: dump "
                             "early, 2: restore root only, 3: dump pages, ...)")


def _transport(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transport", choices=TRANSPORTS, default="local",
                        help="how the pages travel: local (image files), page-server (to a "
                             "second host's criu page-server, across a veth pair), lazy "
                             "(post-copy from the source; implies --isolation ns)")


def _isolation(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--isolation", choices=[str(i) for i in Isolation], default=None,
                        help="none: host processes; ns: each workload the init of its own PID "
                             "and mount namespaces (private /tmp); ns+net: and a network "
                             "namespace (default: the scenario's, else "
                             f"{DEFAULT_ISOLATION})")


def _keep_max(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep-max", type=_count, default=None, metavar="N",
                        help="kept run directories to leave in the temp directory; older ones "
                             f"are pruned (default: ${rundir.KEEP_MAX_ENV}, else "
                             f"{rundir.DEFAULT_KEEP_MAX})")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="criu-harness", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="migrate scenarios and verify them")
    run.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                     help=f"built-in names or scenario files (default: {' '.join(DEFAULT_SCENARIOS)})")
    run.add_argument("--backend", choices=sorted(BACKENDS), default="rpc",
                     help="how to drive CRIU: rpc (pycriu) or cli (the criu binary)")
    run.add_argument("--plan", choices=[*PLANS, "all"], default=None,
                     help="migration plan (default: the scenario's own; all: every plan)")
    run.add_argument("--iterations", type=_positive, default=1,
                     help="migrate the same running workload N times")
    run.add_argument("--report", type=Path, metavar="DIR",
                     help="write DIR/results.json, and keep failures' artifacts in DIR/artifacts")
    run.add_argument("--keep", action="store_true", help="keep artifacts of passing runs too")
    _isolation(run)
    _transport(run)
    run.add_argument("--safe-handover", action="store_true",
                     help="keep each source stopped (--leave-stopped) until its copy is restored "
                          "and verified; on a failed restore kill the copies and resume the "
                          "sources (implies --isolation ns)")
    run.add_argument("-j", "--jobs", type=_positive, default=1, metavar="N",
                     help="run N scenarios at once, each in a process of its own (default 1)")
    _keep_max(run)
    _criu_binary(run)
    _criu_action(run)
    run.set_defaults(func=_run)

    lst = commands.add_parser("list", help="list the built-in scenarios")
    lst.set_defaults(func=_list)

    rst = commands.add_parser("restore", help="retry the restore from a kept run's images")
    rst.add_argument("dir", type=Path, metavar="DIR",
                     help="a kept run directory, or an unpacked bundle")
    rst.add_argument("--backend", choices=sorted(BACKENDS), default=None,
                     help="how to drive CRIU (default: as the run did)")
    rst.add_argument("--role", help="restore only this role (default: every role, in the run's order)")
    rst.add_argument("--cycle", type=_positive, help="which migration's images (default: the last)")
    _criu_binary(rst)
    rst.set_defaults(func=_restore)

    bnd = commands.add_parser("bundle", help="pack a kept run directory into one .tar.gz")
    bnd.add_argument("dir", type=Path, metavar="DIR", help="a kept run directory")
    bnd.add_argument("-o", "--output", type=Path, metavar="FILE",
                     help="the bundle to write (default: DIR.tar.gz)")
    bnd.set_defaults(func=_bundle)

    chk = commands.add_parser("check", help="can migrations run here? root, criu check, features")
    _criu_binary(chk)
    chk.set_defaults(func=_check)

    mtx = commands.add_parser(
        "matrix", help="the nightly matrix: every scenario x backend x plan, into a dated directory"
    )
    mtx.add_argument("--scenarios", nargs="+", metavar="SCENARIO",
                     help="only these built-in names or scenario files (default: every built-in)")
    mtx.add_argument("--backends", nargs="+", choices=sorted(BACKENDS), metavar="BACKEND",
                     help=f"only these backends (default: {' '.join(BACKENDS)})")
    mtx.add_argument("--iterations", type=_positive, default=1,
                     help="migrate each running workload N times")
    mtx.add_argument("--transports", nargs="+", choices=TRANSPORTS, default=list(TRANSPORTS),
                     metavar="TRANSPORT",
                     help="local runs every plan; page-server and lazy run each scenario that "
                          f"migrates, with --isolation ns (default: {' '.join(TRANSPORTS)})")
    mtx.add_argument("-j", "--jobs", type=_positive, default=1, metavar="N",
                     help="run N results at once (default 1)")
    mtx.add_argument("--out", type=Path, default=matrix.DEFAULT_OUT, metavar="DIR",
                     help=f"base directory of the dated result directories (default: {matrix.DEFAULT_OUT})")
    mtx.add_argument("--previous", type=Path, metavar="DIR",
                     help="compare with these results (default: the latest dated directory in --out)")
    mtx.add_argument("--threshold", type=_fraction, default=compare.DEFAULT_THRESHOLD,
                     help="median downtime growth that counts as a regression (default: 0.2 = +20%%)")
    _keep_max(mtx)
    _criu_binary(mtx)
    _criu_action(mtx)
    mtx.set_defaults(func=_matrix)

    cmp = commands.add_parser("compare", help="compare two runs' results; exit 1 on a regression")
    cmp.add_argument("old", type=Path, metavar="OLD", help="results.json, or a directory holding one")
    cmp.add_argument("new", type=Path, metavar="NEW", help="results.json, or a directory holding one")
    cmp.add_argument("--threshold", type=_fraction, default=compare.DEFAULT_THRESHOLD,
                     help="median downtime growth that counts as a regression (default: 0.2 = +20%%)")
    cmp.set_defaults(func=_compare)
    return parser


# A file the user named that is not there, or not readable: bad input, not a failure.
_BAD_INPUT = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.EROFS}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "keep_max", 0) is None:
            args.keep_max = _keep_max_default()
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


if __name__ == "__main__":
    sys.exit(main())
