"""The ``criu-harness`` command line: a thin front over the library.

Bad usage gets one line on stderr and exit status 2; a run exits 0 when every scenario ended as
expected and 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from harness import report, scenario
from harness.criu import BACKENDS, get_backend
from harness.errors import HarnessError, UsageError
from harness.plan import PLANS
from harness.result import RunReport
from harness.runner import ScenarioRun

DEFAULT_SCENARIOS = ("dgram-echo", "stream-echo")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage dump: the user typed something wrong, not a traceback's worth.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _run(args: argparse.Namespace) -> int:
    names = args.scenarios or list(DEFAULT_SCENARIOS)
    scenarios = [scenario.find(n) for n in names]  # all validated before anything starts
    backend = get_backend(args.backend, args.criu_binary)
    plans: list[str | None] = list(PLANS) if args.plan == "all" else [args.plan]
    run = RunReport(criu_version=backend.criu.version(), backend=backend.name)
    print(report.header(run), flush=True)
    artifacts_into = args.report / "artifacts" if args.report else None
    for s in scenarios:
        for plan in plans:
            result = ScenarioRun(
                s,
                backend,
                plan=plan,
                iterations=args.iterations,
                keep="always" if args.keep else "failed",
                artifacts_into=artifacts_into,
            ).run()
            run.scenarios.append(result)
            print(report.line(result), flush=True)
            if not result.ok and result.reason:
                print(f"    why: {result.reason}", flush=True)
    good = sum(1 for s in run.scenarios if s.ok)
    print(f"{good} of {len(run.scenarios)} scenario(s) as expected")
    if args.report:
        print(f"results: {report.write(run, args.report)}")
    return 0 if run.ok else 1


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


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


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
    run.add_argument("--criu-binary", metavar="PATH", help="the criu binary (default: criu on PATH)")
    run.set_defaults(func=_run)

    lst = commands.add_parser("list", help="list the built-in scenarios")
    lst.set_defaults(func=_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except UsageError as exc:
        print(f"criu-harness: {exc}", file=sys.stderr)
        return 2
    except HarnessError as exc:
        print(f"criu-harness: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("criu-harness: interrupted; every workload was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
