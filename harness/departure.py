"""The source's side of ``criu-harness run --destination HOST[:PORT]``: a migration to another
machine whose ``criu-harness receive`` restores, verifies and judges the workload there.

The run starts here as any run does (workloads, warm-up). The migration's first half runs
here in the plan's order (freeze, quiesce, look, dump, reap) with the pages going straight to
a ``criu page-server`` the receiver starts for each dump (harness.transport.remote); then the
run directory goes over (the other images, and the files the workloads had open, which CRIU
reopens by path: the destination makes it at the same path), with what this side did and saw,
and the receiver runs the second half (restore, look, resume in the plan's order) and judges
the workload as a local run does (progress, losses, the looks compared). Its result is the
run's. A dump that fails is judged here, the workload rolled back here.

Both hosts need the same checkout at the same path (the workloads' programs, the scenario)
and the same CRIU; the Vagrantfile's two-machine mode gives that.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from harness.difference import Inspection
from harness.errors import RemoteError, UsageError
from harness.fields import FieldError, Fields
from harness.netns import Host
from harness.process import Workload
from harness.record import MigrationRecord
from harness.result import ScenarioResult
from harness.rundir import MARKER, RunDir
from harness.scenario import Scenario, builtin_paths
from harness.transport.remote import Remote
from harness.wire import Channel, pack, parse_address

__all__ = ["KEEPER_LOG", "PROTOCOL", "Destination", "Leaving", "leaving", "scenario_ref"]

PROTOCOL = 2
# Written by each side's keeper into its own run directory: never sent over.
KEEPER_LOG = "keeper.log"
# How long the destination may take to restore and judge (its verification has deadlines of
# its own; this only bounds a receiver that hangs).
ARRIVAL_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Destination:
    """Where ``run --destination`` sends the workload: a receiver's address and port."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Destination:
        try:
            return cls(*parse_address(text, "--destination"))
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def scenario_ref(scenario: Scenario) -> dict[str, str]:
    """How the receiver finds the same scenario: a built-in's name, else the file's path;
    and its text's digest, so that two different files are never taken for one."""
    text = scenario.path.read_bytes()
    builtin = scenario.path.resolve() in {p.resolve() for p in builtin_paths()}
    return {"scenario": scenario.path.stem if builtin else str(scenario.path.resolve()),
            "sha256": hashlib.sha256(text).hexdigest()}


class Leaving:
    """A connection to the receiver for one run, as a Cycles departure (harness.cycle)."""

    def __init__(self, channel: Channel, destination: Destination, run_dir: RunDir) -> None:
        self.channel = channel
        self.destination = destination
        self.run_dir = run_dir
        local = channel.sk.getsockname()[0]
        self.transport = Remote(channel, Host("source", local), destination.host)

    def arrive(self, record: MigrationRecord, looks: Inspection | None,
               workloads: Mapping[str, Workload]) -> ScenarioResult:
        """Send the run directory over with what was done so far and what the workloads are
        (a daemon's pid in its namespace, say); the destination restores, resumes and judges
        the workload: its result."""
        top = self.run_dir.path
        files = pack(top, [p for p in sorted(top.iterdir())
                           if p.name not in (KEEPER_LOG, MARKER)])
        before = ({role: {str(pid): fp.to_json() for pid, fp in tree.items()}
                   for role, tree in looks.before.items()} if looks is not None else None)
        answer, _ = self.channel.ask({
            "op": "arrive",
            "started": record.started,
            "phases": [p.to_json() for p in record.phases],
            "calls": [c.to_json() for c in record.calls],
            "before": before,
            "workloads": {role: w.arrival() for role, w in workloads.items()},
        }, files, timeout=ARRIVAL_TIMEOUT_S)
        try:
            result = ScenarioResult.from_json(Fields(answer["result"], "the receiver's result"))
        except (KeyError, FieldError) as exc:
            raise RemoteError(f"{self.channel.peer}: a result the harness cannot read: {exc}") from None
        kept = answer.get("kept")
        if kept:
            result.reason = "; ".join(filter(None, [
                result.reason, f"the destination kept {self.destination.host}:{kept}"]))
        return result


@contextmanager
def leaving(destination: Destination, run_dir: RunDir, hello: dict[str, Any],
            timeout: float = 10.0) -> Iterator[Leaving]:
    """Connected to the receiver at destination, which has agreed to take this run."""
    try:
        sk = socket.create_connection((destination.host, destination.port), timeout=timeout)
    except OSError as exc:
        raise RemoteError(f"cannot reach a receiver at {destination}: {exc} (is `criu-harness "
                          f"receive --listen {destination.host}` running there?)") from None
    sk.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sk.settimeout(None)
    channel = Channel(sk, f"receiver {destination}")
    try:
        channel.ask({"op": "hello", "protocol": PROTOCOL, "run_dir": str(run_dir.path), **hello},
                    timeout=timeout)
        leave = Leaving(channel, destination, run_dir)
        try:
            yield leave
        finally:
            leave.transport.close()
    finally:
        channel.close()  # the receiver ends its side of the run: its workloads with it
