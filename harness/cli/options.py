"""What several commands take: numbers checked as they are parsed (finite, in range, one line
when not), the CRIU binary, a CRIU action's deadline and fault, how many kept runs to leave."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable

from harness import rundir, shards
from harness.criu import DEFAULT_TIMEOUT_S
from harness.errors import UsageError
from harness.isolation import DEFAULT_ISOLATION, Isolation
from harness.transport import TRANSPORTS

__all__ = ["count", "criu_action", "criu_binary", "fraction", "isolation", "keep_max",
           "keep_max_default", "positive", "seconds", "shard", "transport"]


def at_least(
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


positive = at_least(int, 1)
count = at_least(int, 0)
fraction = at_least(float, 0)
seconds = at_least(float, 0, above=True)


def shard(text: str) -> shards.Shard:
    try:
        return shards.parse_shard(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def keep_max_default() -> int:
    """--keep-max's default: $CRIU_HARNESS_KEEP_MAX, else DEFAULT_KEEP_MAX."""
    text = os.environ.get(rundir.KEEP_MAX_ENV)
    if text is None:
        return rundir.DEFAULT_KEEP_MAX
    try:
        return int(count(text))
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"${rundir.KEEP_MAX_ENV}: {exc}") from None


def criu_binary(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--criu-binary", metavar="PATH", help="the criu binary (default: criu on PATH)")
    parser.add_argument("--cuda-checkpoint", metavar="PATH",
                        help="NVIDIA's cuda-checkpoint for CRIU's CUDA plugin (default: on PATH)")


def criu_action(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--criu-timeout", type=seconds, metavar="SECONDS",
                        help="kill a CRIU action that runs longer, and roll back (default: the "
                             f"scenario's [criu] timeout, else {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--criu-fault", type=positive, metavar="N",
                        help="CRIU fault injection: CRIU_FAULT=N for every CRIU action (1: dump "
                             "early, 2: restore root only, 3: dump pages, ...)")


def keep_max(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep-max", type=count, default=None, metavar="N",
                        help="kept run directories to leave in the temp directory; older ones "
                             f"are pruned (default: ${rundir.KEEP_MAX_ENV}, else "
                             f"{rundir.DEFAULT_KEEP_MAX})")


def transport(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transport", choices=TRANSPORTS, default="local",
                        help="how the pages travel: local (image files), page-server (to a "
                             "second host's criu page-server, across a veth pair), lazy "
                             "(post-copy from the source; implies --isolation ns)")


def isolation(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--isolation", choices=[str(i) for i in Isolation], default=None,
                        help="none: host processes; ns: each workload the init of its own PID "
                             "and mount namespaces (private /tmp); ns+net: and a network "
                             "namespace (default: the scenario's, else "
                             f"{DEFAULT_ISOLATION})")
