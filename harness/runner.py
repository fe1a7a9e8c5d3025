"""Runs a scenario end to end: set it up, migrate it cycle after cycle, conclude, and keep the
evidence. Each phase is a module of its own (startup, cycle, verdict, evidence); this one
orders them and owns what must end whatever happens: the workloads and the run directory."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from harness import departure, preflight, selfcheck, startup
from harness import transport as harness_transport
from harness.criu import Backend
from harness.cycle import Cycles
from harness.departure import Destination, Leaving
from harness.errors import HarnessError, UsageError
from harness.evidence import keep_or_remove
from harness.isolation import Isolation, get_isolation, namespaces
from harness.plan import Plan, get_plan
from harness.process import Workload
from harness.progress import Progress
from harness.result import CycleResult, Keep, Outcome, ScenarioResult
from harness.rundir import RunDir
from harness.scenario import Expectation, Scenario
from harness.supervisor import Supervisor
from harness.transport import Transport
from harness.verdict import conclude

__all__ = ["ScenarioRun"]


class ScenarioRun:
    """One scenario under one backend and plan, migrated ``iterations`` times in a row."""

    def __init__(
        self,
        scenario: Scenario,
        backend: Backend,
        plan: str | None = None,
        iterations: int = 1,
        keep: Keep | str = Keep.FAILED,
        bundle_into: Path | None = None,
        fingerprint: bool = True,
        run_dir: RunDir | None = None,
        isolation: Isolation | str | None = None,
        transport: str = "local",
        say: Callable[[str], None] | None = None,
        safe_handover: bool = False,
        destination: Destination | str | None = None,
    ) -> None:
        if keep not in tuple(Keep):
            raise HarnessError(f"keep must be one of {', '.join(Keep)}, not {keep!r}")
        if iterations < 1:
            raise HarnessError(f"iterations must be at least 1, not {iterations}")
        self.scenario = scenario
        self.backend = backend
        self.plan: Plan = get_plan(plan or scenario.plan).for_roles(scenario.roles)
        self.plan.check(scenario.roles)
        self.expect: Expectation = scenario.expectation(self.plan.name, backend.criu.version())
        self.iterations = iterations
        self.keep = Keep(keep)
        # A report's directory: a kept run is also packed there as one .tar.gz.
        self.bundle_into = bundle_into
        # Compare each process's visible state before the dump and after the restore. The
        # looks are taken while the workload is stopped, so they add to the downtime (a few ms).
        self.fingerprint = fingerprint
        # A caller may make the run directory first, to know its paths before the run (the
        # pytest fixture does); the run then owns it like one of its own.
        self.run_dir = run_dir
        self.transport = harness_transport.check_transport(transport)
        self.safe_handover = safe_handover
        self.isolation = _isolation(isolation or scenario.isolation, self.transport, safe_handover)
        # Another machine's `criu-harness receive` (harness.departure): the pages go to its
        # page servers, it restores and judges the workload.
        self.destination = _destination(destination, transport, iterations, safe_handover)
        if self.destination is not None:
            self.transport = "page-server"
        # Where the harness says what it changed on the machine (fs.pipe-max-size for lazy).
        self.say = say or (lambda line: print(f"criu-harness: {line}", file=sys.stderr))

    def run(self) -> ScenarioResult:
        result = ScenarioResult(
            name=self.scenario.name,
            expected=self.expect.outcome,
            backend=self.backend.name,
            plan=self.plan.name,
            mechanism=self.scenario.mechanism or None,
            criu_version=self.backend.criu.version(),
            isolation=str(self.isolation),
            transport=self.transport,
            destination=str(self.destination or ""),
        )
        started = time.monotonic()
        run_dir = self.run_dir = self.run_dir or RunDir(self.scenario.name)
        interrupted: BaseException | None = None
        try:
            with Supervisor(run_dir.path.name, run_dir.path / "keeper.log") as supervisor:
                self._execute(supervisor, run_dir, result)
        except HarnessError as exc:
            result.outcome, result.reason = Outcome.ERROR, str(exc)
            _unfinished_cycle(result, str(exc))
        except KeyboardInterrupt as exc:
            result.outcome, result.reason = Outcome.ERROR, f"interrupted ({type(exc).__name__})"
            _unfinished_cycle(result, "interrupted")
            interrupted = exc
        finally:
            result.duration_s = round(time.monotonic() - started, 3)
            keep_or_remove(run_dir, result, self.backend, self.keep, self.bundle_into)
        if interrupted is not None:
            raise interrupted
        return result

    def before_migrations(self, workloads: dict[str, Workload]) -> str | None:
        """Called once the workloads run, before the first migration: a subclass looks at them
        here (harness.forecast predicts their dumps); a reason returned stops the run there,
        with nothing dumped."""
        return None

    def _execute(self, supervisor: Supervisor, run_dir: RunDir, result: ScenarioResult) -> None:
        # A scenario needing a CRIU feature this kernel lacks cannot pass or fail here; lazy
        # pages are gated by a trial migration (harness.preflight).
        features = (*self.scenario.features, *(["lazy-pages"] if self.transport == "lazy" else []))
        if missing := preflight.missing_features(features, self.backend.criu.path):
            result.outcome, result.reason = Outcome.SKIPPED, preflight.skip_reason(missing)
            return

        def render(text: str) -> str:
            return self.scenario.render(text, run_dir.path)

        with ExitStack() as stack:
            leave = None
            if self.destination is not None:
                # Connected before anything starts: a receiver that is not there, or refuses,
                # stops the run with nothing to clean up.
                leave = stack.enter_context(departure.leaving(
                    self.destination, run_dir, self._hello()))
            startup.build(self.scenario, render)
            workloads = startup.start(self.scenario, supervisor, run_dir.path, render,
                                      namespaces(self.isolation, run_dir.path))
            progress = stack.enter_context(self.scenario.verify.progress(render))
            transport = leave.transport if leave is not None else stack.enter_context(
                harness_transport.opened(self.transport, self.backend.criu.path, run_dir.path,
                                         supervisor.cgroup, self.backend.timeout, self.say))
            self._migrate(run_dir, result, workloads, progress, transport, leave, render)

    def _hello(self) -> dict[str, object]:
        """What the receiver needs to know of this run (harness.departure)."""
        return {**departure.scenario_ref(self.scenario), "backend": self.backend.name,
                "timeout": self.backend.timeout, "plan": self.plan.name,
                "isolation": str(self.isolation), "keep": str(self.keep),
                "fingerprint": self.fingerprint, "destination": str(self.destination)}

    def _migrate(self, run_dir: RunDir, result: ScenarioResult, workloads: dict[str, Workload],
                 progress: Progress, transport: Transport, leave: Leaving | None,
                 render: Callable[[str], str]) -> None:
        startup.warm_up(self.scenario, progress, workloads)
        if (stop := self.before_migrations(workloads)) is not None:
            result.outcome, result.reason = Outcome.SKIPPED, stop
            return
        cycles = Cycles(self.scenario, self.backend, self.plan, self.expect, run_dir,
                        workloads, progress, self.keep, self.fingerprint, self.iterations,
                        isolation=self.isolation, transport=transport,
                        safe_handover=self.safe_handover, departure=leave)
        for n in range(1, self.iterations + 1):
            # Held by the result before it runs: an interrupt leaves it there, halfway.
            cycle = CycleResult(n, Outcome.ERROR, reason="interrupted")
            result.cycles.append(cycle)
            cycles.run(cycle)
            if cycle.outcome is not Outcome.PASSED:
                break
        if cycles.arrived is not None:
            _arrived(result, cycles.arrived)
            return
        asked = None
        if self.scenario.verify.signal is not None and cycle.outcome is Outcome.PASSED:
            asked = selfcheck.ask(self.scenario.verify, workloads, render)
        # cycles.expect: the scenario's [expect.or] if CRIU did the other thing.
        conclude(result, cycles.expect, progress, workloads, cycles.resumed, asked)


def _isolation(chosen: Isolation | str | None, transport: str, safe_handover: bool) -> Isolation:
    """The run's choice, else the scenario's, else the default (harness.isolation); lazy
    pages need a PID namespace (the dumped task lives on while the restore runs), and so
    does a safe hand-over, which restores beside the stopped source."""
    if chosen is None and (transport == "lazy" or safe_handover):
        chosen = Isolation.NS
    isolation = get_isolation(chosen)
    if transport == "lazy" and not isolation.namespaced:
        raise UsageError(
            "--transport lazy needs --isolation ns: the dumped task lives until its last "
            "page is served, and a restore beside it would need its pids")
    if safe_handover and transport == "lazy":
        raise UsageError(
            "--safe-handover cannot keep a lazy dump's source: the dump ends, and CRIU "
            "kills the source, as soon as the lazy-pages daemon is done, and the dying "
            "tasks of a failed restore get it done")
    if safe_handover and not isolation.namespaced:
        raise UsageError(
            "--safe-handover needs --isolation ns: the copy is restored while the stopped "
            "source still holds its pids")
    return isolation


def _destination(destination: Destination | str | None, transport: str, iterations: int,
                 safe_handover: bool) -> Destination | None:
    """Where --destination sends the workload, if anywhere, with what it rules out."""
    if destination is None:
        return None
    if transport not in ("local", "page-server"):
        raise UsageError(f"--destination sends the pages through a page server: "
                         f"--transport {transport} cannot be used with it")
    if iterations != 1:
        raise UsageError("--destination migrates once: the workload ends up on the "
                         "other host (--iterations 1)")
    if safe_handover:
        raise UsageError("--safe-handover keeps the source beside its copy on one "
                         "host: it cannot be used with --destination")
    return Destination.parse(destination) if isinstance(destination, str) else destination


def _arrived(result: ScenarioResult, theirs: ScenarioResult) -> None:
    """The destination's verdict on a workload migrated there is the run's (its cycle, with
    what this side did, is already in result)."""
    for name in ("outcome", "reason", "messages_lost", "duplicates", "out_of_order", "timeouts",
                 "client_errors", "sent", "answered", "downtime_ms", "criu_error",
                 "downtime_summary"):
        setattr(result, name, getattr(theirs, name))


def _unfinished_cycle(result: ScenarioResult, why: str) -> None:
    """Say why the cycle an interrupt or an error ended stopped, and at which step: the one
    that never finished (a receiver gone in the middle of a dump, say)."""
    if not result.cycles or result.cycles[-1].reason != "interrupted":
        return
    cycle = result.cycles[-1]
    unfinished = [p for p in cycle.phases if not p.ok]
    where = f" during {unfinished[-1].step} of {unfinished[-1].role}" if unfinished else ""
    cycle.reason = f"{why}{where}"
