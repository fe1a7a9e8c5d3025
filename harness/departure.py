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
from typing import Any, Protocol

from harness.criu import CriuCall
from harness.difference import Inspection
from harness.errors import RemoteError, UsageError
from harness.fields import FieldError, Fields
from harness.fingerprint import Fingerprint
from harness.namespace import Namespaces
from harness.netns import Host
from harness.process import Workload
from harness.record import MigrationRecord
from harness.result import Phase, ScenarioResult
from harness.rundir import MARKER, RunDir
from harness.scenario import Scenario, builtin_paths
from harness.transport.remote import Remote
from harness.wire import Channel, pack, parse_address

__all__ = ["KEEPER_LOG", "PROTOCOL", "Arrival", "Departure", "Destination", "Leaving", "leaving",
           "scenario_ref", "state_of", "take_over"]

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


class Departure(Protocol):
    """The source's side of a migration to another host, as harness.cycle sees it (Leaving)."""

    def arrive(self, record: MigrationRecord, looks: Inspection | None,
               workloads: Mapping[str, Workload]) -> ScenarioResult:
        """Send the dumped workload over; the destination restores and judges it: its result."""
        ...


@dataclass
class Arrival:
    """What the source did of a migration that goes on at the destination (harness.cycle
    starts from it there)."""

    started: float
    phases: list[Phase]
    calls: list[CriuCall]
    # The source's looks before its dumps, by role (None: it took none).
    before: dict[str, dict[int, Fingerprint]] | None

    @classmethod
    def of(cls, record: MigrationRecord, looks: Inspection | None) -> Arrival:
        return cls(record.started, list(record.phases), list(record.calls),
                   looks.before if looks is not None else None)

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "phases": [p.to_json() for p in self.phases],
            "calls": [c.to_json() for c in self.calls],
            "before": None if self.before is None else {
                role: {str(pid): fp.to_json() for pid, fp in tree.items()}
                for role, tree in self.before.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Arrival:
        """From to_json's dict (UsageError if it cannot be read)."""
        try:
            before = data.get("before")
            return cls(
                started=float(data["started"]),
                phases=[Phase.from_json(Fields(p, "phases")) for p in data["phases"]],
                calls=[CriuCall.from_json(Fields(c, "calls")) for c in data["calls"]],
                before=None if before is None else {
                    str(role): {int(pid): Fingerprint.from_json(fp) for pid, fp in tree.items()}
                    for role, tree in before.items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError, FieldError) as exc:
            raise UsageError(f"an arrival the harness cannot read: {exc}") from None


def state_of(workload: Workload) -> dict[str, object]:
    """What the receiver needs of a workload to take it over once restored there, having
    never started it: how it was started, and which process is the program (a daemon's pid
    in its namespace: Workload.became)."""
    return {"namespaces": workload.namespaces.to_json() if workload.namespaces else None,
            "main": workload.main}


def take_over(workload: Workload, state: Mapping[str, object]) -> None:
    """Give a workload this host never started state_of's state (ValueError if it cannot be
    read: nothing is taken then)."""
    namespaces, main = state.get("namespaces"), state.get("main")
    if namespaces is not None and not isinstance(namespaces, Mapping):
        raise ValueError(f"{workload.name}: namespaces {namespaces!r} is not a table")
    if main is not None and not isinstance(main, int):
        raise ValueError(f"{workload.name}: main {main!r} is not a pid")
    workload.namespaces = Namespaces.from_json(namespaces) if namespaces is not None else None
    workload.main = main


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
        answer, _ = self.channel.ask({
            "op": "arrive",
            **Arrival.of(record, looks).to_json(),
            "workloads": {role: state_of(w) for role, w in workloads.items()},
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
