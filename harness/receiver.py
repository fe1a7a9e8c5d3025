"""The destination's side of a migration between two machines: ``criu-harness receive
--listen ADDR[:PORT]``.

Each connection is one run from a ``criu-harness run --destination`` (harness.departure):
the source says which scenario, backend, plan and isolation, and the path of its run
directory, which is made here at the same path. For each dump a ``criu page-server`` is
started on the listening address (``Sides.page_server``, the very code of the veth pair's
page-server transport) and its port given back; when the workload arrives (the run
directory, with what the source did and saw), the second half of the migration runs here,
the restores under a supervisor of this host (a cgroup per role, a keeper: nothing of the
workload outlives the run here either), and the workload is judged as a local run judges it
(harness.cycle). The result goes back; the run directory is kept here as a local run keeps
its own (on failure, or always when the source asked to keep).

Anyone who reaches the port can have this host's root restore images: listen on a private
network only (the Vagrantfile's two-machine mode has one).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from harness import report, selfcheck
from harness import scenario as scenarios
from harness.criu import Backend, get_backend
from harness.cycle import Cycles, images_of, role_options
from harness.departure import KEEPER_LOG, PROTOCOL, Arrival, take_over
from harness.door import Door
from harness.errors import CriuError, HarnessError, RemoteError, UsageError
from harness.evidence import keep_or_remove
from harness.isolation import Isolation, get_isolation
from harness.netns import Host
from harness.plan import Plan, get_plan
from harness.process import Workload
from harness.result import CycleResult, Keep, Outcome, ScenarioResult
from harness.rundir import RunDir
from harness.scenario import Expectation, Scenario
from harness.supervisor import Supervisor
from harness.transport import PageServer, ship
from harness.verdict import conclude
from harness.wire import Channel, pack, unpack

__all__ = ["Receiver"]

HELLO_TIMEOUT_S = 30.0
# Files of the destination's image directory that stay here when pages are fetched back.
_LOGS = (".log", ".out")


class Receiver:
    """Listens on address:port and takes one run at a time."""

    def __init__(self, address: str, port: int, criu_binary: str | None = None,
                 say: Callable[[str], None] = print) -> None:
        self.address = address
        self.port = port
        self.criu_binary = criu_binary
        self.say = say

    def serve(self, once: bool = False) -> int:
        """Take runs until interrupted (once: one run, then return): 0 if every run that
        arrived was as expected and none was refused, 1 if not. (A run whose workload never
        arrived, a dump that failed at the source, is the source's to judge.)"""
        failed = 0
        with Door(self.address, self.port, self.say) as door:
            self.say(f"receiving on {self.address}:{self.port}")
            while True:
                sk, peer = door.next()
                visit = Visit(Channel(sk, f"source {peer}"), self, peer)
                try:
                    with sk:
                        result = visit.serve()
                finally:
                    door.done()
                if visit.refused or (result is not None and not result.ok):
                    failed += 1
                if once:
                    return 1 if failed else 0


class Visit:
    """One run from one source, from its hello to the end of its connection."""

    def __init__(self, channel: Channel, receiver: Receiver, peer: str) -> None:
        self.channel = channel
        self.receiver = receiver
        self.peer = peer
        self.servers: dict[Path, Any] = {}
        self.server_failed = False
        self.refused = False

    def serve(self) -> ScenarioResult | None:
        """The run's result if its workload arrived (None: refused, or it ended at the
        source)."""
        setup = self._hello()
        if setup is None:
            return None
        result = setup.result()
        started = time.monotonic()
        arrived = False
        try:
            with Supervisor(f"{setup.run_dir.path.name}-arrived",
                            setup.run_dir.path / KEEPER_LOG) as supervisor:
                workloads = {role: supervisor.expect(role, setup.run_dir.path)
                             for role in setup.plan.restore}
                transport = PageServer(setup.backend.criu.path, Host("source", self.peer),
                                       Host("destination", self.receiver.address),
                                       setup.run_dir.path, setup.backend.timeout)
                # The restores' CRIU started now, while the workload still runs at the
                # source: its start is not part of the downtime (RpcBackend.warm).
                images = images_of(setup.run_dir, 1, 1)
                for role in setup.plan.restore:
                    transport.warm(setup.backend, "restore", role_options(
                        setup.scenario, setup.isolation, setup.run_dir.path, workloads[role],
                        images / role, "restore"))
                try:
                    arrived = self._converse(setup, transport, workloads, result)
                finally:
                    setup.backend.cool()
                    for server in self.servers.values():
                        server.stop()
                    transport.close()
        except KeyboardInterrupt:
            result.outcome, result.reason = Outcome.ERROR, "interrupted at the destination"
            arrived = True  # keep what there is
            raise
        finally:
            result.duration_s = round(time.monotonic() - started, 3)
            if arrived or self.server_failed:
                keep_or_remove(setup.run_dir, result, setup.backend, setup.keep)
            else:
                setup.run_dir.remove()
        say = self.receiver.say
        if not arrived:
            say(f"{setup.scenario.name} from {self.peer}: nothing arrived (the run ended at "
                "the source)")
            return None
        say(f"{report.line(result)}  (from {self.peer})")
        with suppress(RemoteError):  # a source gone meanwhile: the verdict is said here
            self.channel.answer({"result": result.to_json(), "kept": result.artifacts})
        return result

    def _hello(self) -> Setup | None:
        """The source's hello, checked and answered (None: refused, and told why)."""
        try:
            self.channel.sk.settimeout(HELLO_TIMEOUT_S)  # a peer that says nothing is let go
            hello, _ = self.channel.receive()
            self.channel.sk.settimeout(None)
            setup = Setup.of(hello, self.receiver.criu_binary)
        except (HarnessError, TimeoutError) as exc:
            self.receiver.say(f"refused {self.peer}: {exc}")
            self.refused = True
            with suppress(RemoteError):
                self.channel.refuse(str(exc))
            return None
        self.channel.answer({"criu_version": setup.backend.criu.version()})
        return setup

    def _converse(self, setup: Setup, transport: PageServer, workloads: dict[str, Workload],
                  result: ScenarioResult) -> bool:
        """Serve the source's requests until its workload has arrived and been judged (True)
        or it goes away (False)."""
        while True:
            try:
                message, data = self.channel.receive()
            except RemoteError:
                return False
            op = message.get("op")
            try:
                if op == "serve":
                    images_dir = setup.images_dir(message)
                    server, port = transport.sides.page_server(images_dir)
                    self.servers[images_dir] = server
                    self.channel.answer({"port": port})
                elif op == "served":
                    self.channel.answer({"failed": self._served(setup, transport, message)})
                elif op == "fetch":
                    dst = transport.destination(setup.images_dir(message))
                    files = [p for p in dst.iterdir() if not p.name.endswith(_LOGS)]
                    self.channel.answer({}, pack(dst, files))
                elif op == "arrive":
                    self._arrive(setup, transport, workloads, result, message, data)
                    return True
                else:
                    self.channel.refuse(f"unknown request {op!r}")
            except (HarnessError, OSError) as exc:
                self.channel.refuse(str(exc))

    def _served(self, setup: Setup, transport: PageServer,
                message: dict[str, Any]) -> dict[str, Any] | None:
        images_dir = setup.images_dir(message)
        server = self.servers.pop(images_dir, None)
        if server is None:
            raise UsageError(f"no page server for {images_dir}")
        try:
            transport.sides.page_server_done(server, transport.destination(images_dir))
        except CriuError as err:
            self.server_failed = True
            return {"signature": err.signature, "rc": err.returncode, "log": str(err.log_path)}
        finally:
            server.stop()
        return None

    def _arrive(self, setup: Setup, transport: PageServer, workloads: dict[str, Workload],
                result: ScenarioResult, message: dict[str, Any], data: bytes) -> None:
        """The second half of the migration, and the verdict, into result."""
        top = setup.run_dir.path
        unpack(data, top)
        for role in setup.plan.dump:
            images = images_of(setup.run_dir, 1, 1) / role
            if images.is_dir():
                ship(images, transport.destination(images))
        arrival = Arrival.from_json(message)
        try:
            for role, state in message.get("workloads", {}).items():
                if role in workloads:
                    take_over(workloads[role], state)
        except (TypeError, ValueError, AttributeError) as exc:
            raise UsageError(f"an arrival the harness cannot read: {exc}") from None

        def render(text: str) -> str:
            return setup.scenario.render(text, top)

        verify = setup.scenario.verify
        with verify.progress(render) as progress:
            cycles = Cycles(setup.scenario, setup.backend, setup.plan, setup.expect,
                            setup.run_dir, workloads, progress, setup.keep, setup.fingerprint,
                            1, isolation=setup.isolation, transport=transport, arrival=arrival)
            cycle = CycleResult(1, Outcome.ERROR, reason="interrupted")
            result.cycles.append(cycle)
            cycles.run(cycle)
            asked = None
            if verify.signal is not None and cycle.outcome is Outcome.PASSED:
                asked = selfcheck.ask(verify, workloads, render)
            conclude(result, cycles.expect, progress, workloads, cycles.resumed, asked)


class Setup:
    """What a source's hello asks for, checked on this host."""

    def __init__(self, scenario: Scenario, backend: Backend, plan: Plan, isolation: Isolation,
                 keep: Keep, fingerprint: bool, run_dir: RunDir, destination: str) -> None:
        self.scenario = scenario
        self.backend = backend
        self.plan = plan
        self.expect: Expectation = scenario.expectation(plan.name, backend.criu.version())
        self.isolation = isolation
        self.keep = keep
        self.fingerprint = fingerprint
        self.run_dir = run_dir
        self.destination = destination

    @classmethod
    def of(cls, hello: dict[str, Any], criu_binary: str | None) -> Setup:
        if hello.get("op") != "hello":
            raise UsageError("expected a hello from a `criu-harness run --destination`")
        if hello.get("protocol") != PROTOCOL:
            raise UsageError(f"the source speaks protocol {hello.get('protocol')!r}, this "
                             f"receiver {PROTOCOL}: run the same harness on both hosts")
        try:
            ref, digest = str(hello["scenario"]), str(hello["sha256"])
            scenario = scenarios.find(ref)
            if hashlib.sha256(scenario.path.read_bytes()).hexdigest() != digest:
                raise UsageError(f"scenario {ref}: not the same file on both hosts")
            timeout = hello.get("timeout")
            backend = get_backend(str(hello["backend"]), criu_binary,
                                  float(timeout) if timeout is not None else None)
            plan = get_plan(str(hello["plan"])).for_roles(scenario.roles)
            isolation = get_isolation(str(hello["isolation"]))
            keep = Keep(str(hello.get("keep", Keep.FAILED)))
            fingerprint = bool(hello.get("fingerprint", True))
            path = Path(str(hello["run_dir"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"a hello the harness cannot read: {exc}") from None
        return cls(scenario, backend, plan, isolation, keep, fingerprint, RunDir.claim(path),
                   str(hello.get("destination", "")))

    def images_dir(self, message: dict[str, Any]) -> Path:
        """A request's images directory: only one of this run's (CRIU writes into it)."""
        path = Path(str(message.get("images_dir", "")))
        top = self.run_dir.path
        if ".." in path.parts or not path.is_relative_to(top / "images"):
            raise UsageError(f"images directory {path}: not one of this run's")
        return path

    def result(self) -> ScenarioResult:
        return ScenarioResult(
            name=self.scenario.name, expected=self.expect.outcome, backend=self.backend.name,
            plan=self.plan.name, mechanism=self.scenario.mechanism or None,
            criu_version=self.backend.criu.version(), isolation=str(self.isolation),
            transport="page-server", destination=self.destination,
        )
