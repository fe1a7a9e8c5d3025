"""Runs a scenario end to end: start the workloads, migrate them, verify, keep the evidence."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

from harness import preflight
from harness.artifacts import bundle, write_artifacts
from harness.criu import Backend, CriuOptions
from harness.criu.log import error_lines
from harness.errors import CriuError, HarnessError, VerificationError, WorkloadError
from harness.fingerprint import Inspection, describe
from harness.migration import Migration, MigrationRecord
from harness.plan import Plan, get_plan
from harness.process import Supervisor, Workload
from harness.result import CycleResult, DowntimeSummary, Keep, Outcome, RoleStats, ScenarioResult, Step
from harness.rundir import RunDir
from harness.scenario import Expectation, ProcessSpec, Scenario
from harness.stats import image_bytes, read_stats
from harness.verification import (
    Accounting,
    EventProgress,
    LogProgress,
    Progress,
    losses_between,
    read_events,
)
from harness.waiting import DeadlinePassed, wait_for

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
        # A report's directory: a kept run is also packed there as one .tar.gz, so the report
        # holds its evidence while the run directory stays where it ran, replayable.
        self.bundle_into = bundle_into
        # Compare each process's visible state before the dump and after the restore. The
        # looks are taken while the workload is stopped, so they add to the downtime (a few ms).
        self.fingerprint = fingerprint
        # A caller may make the run directory first, to know its paths before the run (the
        # pytest fixture does); the run then owns it like one of its own.
        self._given_run_dir = run_dir
        self.run_dir: RunDir | None = None
        self.workloads: dict[str, Workload] = {}
        # After the expected CRIU failure: did the workload go on? (None: no such failure.)
        self._resumed: bool | None = None
        # Wall-clock time up to which the client's messages are accounted to a cycle.
        self._verified_until = 0.0

    def run(self) -> ScenarioResult:
        result = ScenarioResult(
            name=self.scenario.name,
            expected=self.expect.outcome,
            backend=self.backend.name,
            plan=self.plan.name,
            mechanism=self.scenario.mechanism or None,
            criu_version=self.backend.criu.version(),
        )
        started = time.monotonic()
        self.run_dir = self._given_run_dir or RunDir(self.scenario.name)
        interrupted: BaseException | None = None
        try:
            with Supervisor() as supervisor:
                self._execute(supervisor, result)
        except HarnessError as exc:
            result.outcome, result.reason = Outcome.ERROR, str(exc)
        except KeyboardInterrupt as exc:
            result.outcome, result.reason = Outcome.ERROR, f"interrupted ({type(exc).__name__})"
            interrupted = exc
        finally:
            result.duration_s = round(time.monotonic() - started, 3)
            self._finish(result)
        if interrupted is not None:
            raise interrupted
        return result

    # --- the steps ----------------------------------------------------------------------------

    def _execute(self, supervisor: Supervisor, result: ScenarioResult) -> None:
        assert self.run_dir is not None
        # A scenario needing a CRIU feature this kernel lacks cannot pass or fail here.
        if missing := preflight.missing_features(self.scenario.features, self.backend.criu.path):
            result.outcome, result.reason = Outcome.SKIPPED, preflight.skip_reason(missing)
            return
        self._build()
        for spec in self.scenario.processes:
            workload = supervisor.spawn(
                spec.role,
                [self._render(a) for a in spec.argv],
                self.run_dir.path,
                cwd=Path(self._render(spec.cwd)) if spec.cwd else None,
                env={k: self._render(v) for k, v in spec.env.items()},
            )
            self._wait_ready(workload, spec)
        self.workloads = supervisor.workloads
        progress = self._progress()
        verify = self.scenario.verify
        # Warm-up: the loop runs before anything is frozen, or there is nothing to compare.
        try:
            progress.wait(0.0, verify.min_progress, verify.deadline)
        except VerificationError as exc:
            raise WorkloadError(f"before any migration: {exc}; {self._tails()}") from None

        for n in range(1, self.iterations + 1):
            cycle = self._cycle(n, progress)
            result.cycles.append(cycle)
            if cycle.outcome is not Outcome.PASSED:
                break
        self._conclude(result, progress)

    def _cycle(self, n: int, progress: Progress) -> CycleResult:
        assert self.run_dir is not None
        images = self.run_dir.subdir("images", f"cycle-{n}") if self.iterations > 1 else (
            self.run_dir.subdir("images")
        )

        def options_for(role: str, action: str) -> CriuOptions:
            return self.scenario.criu.options(action, images / role, f"{action}.log")

        looks = Inspection(self.plan.freeze) if self.fingerprint else None
        record = Migration(
            self.backend,
            self.plan,
            options_for,
            before_dump=looks.before_dump if looks else None,
            after_restore=looks.after_restore if looks else None,
        ).run(self.workloads)
        cycle = CycleResult(
            cycle=n,
            outcome=Outcome.FAILED,
            phases=record.phases,
            calls=record.calls,
            stats=self._stats(record, images),
        )
        alternative = self.scenario.alternative
        if alternative is not None and (record.error is None) == (self.expect.outcome == "fails"):
            # CRIU did what [expect.or] expects: the run is held to that from now on (the
            # result's `expected` stays the scenario's own: an alternative is no change).
            self.expect = alternative
        if record.error is not None:
            self._failed_migration(cycle, record, progress)
        elif self.expect.outcome == "fails":
            cycle.outcome = Outcome.XPASSED
            cycle.reason = (
                f"expected criu {self.expect.action} to fail with "
                f"{self.expect.signature!r}, but the migration succeeded"
            )
        else:
            self._verify(cycle, record, progress, looks)
            if cycle.outcome is Outcome.PASSED and self.keep is not Keep.ALWAYS:
                _drop_pages(images)  # many cycles of a passing run must not fill the disk
        return cycle

    def _verify(
        self,
        cycle: CycleResult,
        record: MigrationRecord,
        progress: Progress,
        looks: Inspection | None,
    ) -> None:
        """A migration that succeeded: the workload must go on, lose nothing, look the same."""
        differences = looks.differences() if looks else []
        allowed = self.expect.allowed_differences
        cycle.differences = [d.judged(allowed) for d in differences]
        unexpected = [d for d in cycle.differences if not d.allowed]
        changed = [f"visible state changed: {describe(unexpected)}"] if unexpected else []
        verify = self.scenario.verify
        mark = progress.mark() if isinstance(progress, LogProgress) else record.finished
        try:
            progress.wait(mark, verify.min_progress, verify.deadline)
        except VerificationError as exc:
            if self.expect.outcome == "breaks":
                self._broken(cycle, record, progress, str(exc))
                return
            cycle.reason = "; ".join([f"{exc}; {self._tails()}", *changed])
            return
        if self.expect.outcome == "breaks":
            cycle.outcome = Outcome.XPASSED
            cycle.reason = (
                f"expected the IPC not to come back ({self.expect.signature!r}), but the "
                "workload resumed after the migration"
            )
            return
        if isinstance(progress, EventProgress):
            events = read_events(progress.path)
            window = (record.started, time.time())
            cycle.downtime_ms = Accounting.from_events(events, window).downtime_ms
            # What went wrong since the previous cycle was verified is this migration's doing
            # (a request in flight when the freeze came counts for this one).
            since, self._verified_until = self._verified_until, window[1]
            cycle.messages_lost, cycle.client_errors = losses_between(events, since, window[1])
            cycle.timeline = [
                (round(e["ts"], 4), e.get("rtt_ms", 0.0))
                for e in events
                if e.get("event") == "received" and window[0] - 1 <= e["ts"] <= window[1] + 1
            ]
        problems = [*changed, *self._over_limits(cycle.messages_lost, cycle.client_errors, 0)]
        cycle.outcome = Outcome.FAILED if problems else Outcome.PASSED
        cycle.reason = "; ".join(problems)

    def _stats(self, record: MigrationRecord, images: Path) -> dict[str, RoleStats]:
        """Per role: CRIU's statistics, the image size and the harness's time per step."""
        stats: dict[str, RoleStats] = {}
        for role in self.plan.dump:
            entry = RoleStats(image_bytes=image_bytes(images / role))
            for p in record.phases:
                if p.role == role:
                    key = f"{p.step}_ms"
                    entry.harness[key] = round(entry.harness.get(key, 0.0) + p.duration_ms, 3)
            try:
                entry.criu = read_stats(images / role)
            except HarnessError as exc:
                entry.criu_error = str(exc)
            stats[role] = entry
        return stats

    def _broken(
        self, cycle: CycleResult, record: MigrationRecord, progress: Progress, why: str
    ) -> None:
        """CRIU migrated the workload, and it did not resume: as expected when the client's
        first error since the migration contains the scenario's signature."""
        errors = [
            str(e.get("error"))
            for e in read_events(progress.path)
            if e.get("event") == "error" and e.get("ts", 0) >= record.started
        ] if isinstance(progress, EventProgress) else []
        first = errors[0] if errors else None
        cycle.client_errors = len(errors)
        signature = self.expect.signature or ""
        if first is not None and signature in first:
            cycle.outcome = Outcome.XFAILED
            cycle.reason = f"migrated, but the IPC did not come back, as expected: client: {first}"
            return
        cycle.outcome = Outcome.FAILED
        cycle.reason = (
            f"{why}; expected the client's first error to contain {signature!r}, "
            f"saw {first!r}"
        )

    def _failed_migration(self, cycle: CycleResult, record: MigrationRecord, progress: Progress) -> None:
        err = record.error
        assert err is not None
        matched = self._expected_failure(err, record.failed_step)
        cycle.criu_error = matched or err.signature
        if self.expect.outcome != "fails" or matched is None:
            cycle.outcome = Outcome.FAILED
            wanted = (
                f" (expected criu {self.expect.action} to fail with {self.expect.signature!r})"
                if self.expect.outcome == "fails" else ""
            )
            cycle.reason = f"criu {record.failed_step} failed: {err}{wanted}"
            return
        if record.failed_step is Step.RESTORE:
            # Nothing to roll back to: the images are all there is, and they do not restore.
            cycle.outcome = Outcome.XFAILED
            cycle.reason = "failed as expected at restore; the workload is lost"
            return
        # The expected failure: now the workload must live on as if nothing happened.
        self._resumed = False
        dead = [name for name, w in self.workloads.items() if not w.alive()]
        if dead:
            cycle.outcome = Outcome.FAILED
            cycle.reason = f"after the expected failure, not running: {', '.join(dead)}"
            return
        verify = self.scenario.verify
        try:
            progress.wait(progress.mark(), verify.min_progress, verify.deadline)
        except VerificationError as exc:
            cycle.outcome, cycle.reason = Outcome.FAILED, f"after the expected failure: {exc}"
            return
        self._resumed = True
        cycle.outcome = Outcome.XFAILED
        cycle.reason = "failed as expected; the workload kept running"

    def _expected_failure(self, err: CriuError, step: Step | None) -> str | None:
        """The log line showing CRIU failed as the scenario expects, or None.

        Matched in the log itself, not guessed from an exit code; a CRIU killed by a signal
        never counts as the expected failure."""
        e = self.expect
        if e.outcome != "fails" or step != e.action or err.signal is not None or not e.signature:
            return None
        lines = []
        if err.log_path is not None and err.log_path.exists():
            with err.log_path.open(errors="replace") as log:
                lines = error_lines(log)
        return next((line for line in lines if e.signature in line), None)

    def _conclude(self, result: ScenarioResult, progress: Progress) -> None:
        cycles = result.cycles
        last = cycles[-1]
        result.criu_error = last.criu_error
        downtimes = [c.downtime_ms for c in cycles if c.downtime_ms is not None]
        result.downtime_ms = max(downtimes) if downtimes else None
        result.downtime_summary = DowntimeSummary.of(cycles)
        if isinstance(progress, EventProgress):
            acc = Accounting.from_events(read_events(progress.path))
            result.messages_lost, result.duplicates = acc.messages_lost, acc.duplicates
            result.out_of_order, result.timeouts = acc.out_of_order, acc.timeouts
            result.client_errors = acc.client_errors
            result.sent, result.answered = acc.sent, acc.answered
        if self.expect.outcome in ("fails", "breaks"):
            result.outcome = last.outcome
            result.reason = last.reason
            result.resumed_after_failure = self._resumed
            return
        if last.outcome is not Outcome.PASSED:
            result.outcome, result.reason = Outcome.FAILED, last.reason
            return
        dead = [name for name, w in self.workloads.items() if not w.alive()]
        problems = self._over_limits(
            result.messages_lost, result.client_errors, result.duplicates, len(cycles)
        )
        if dead:
            problems.append(f"not running at the end: {', '.join(dead)}")
        result.outcome = Outcome.FAILED if problems else Outcome.PASSED
        result.reason = "; ".join(problems) or (
            f"{len(cycles)} migration(s) verified" if len(cycles) > 1 else "migrated and verified"
        )

    def _over_limits(self, lost: int, errors: int, duplicates: int, cycles: int = 1) -> list[str]:
        """What is over the scenario's limits; the limits are per migration, so a whole run of
        several cycles may lose that much in each."""
        problems = []
        max_lost, max_errors = self.expect.max_lost * cycles, self.expect.max_client_errors * cycles
        if lost > max_lost:
            problems.append(f"{lost} message(s) lost (at most {max_lost} expected)")
        if errors > max_errors:
            problems.append(f"{errors} client error(s) (at most {max_errors} expected)")
        if duplicates > self.expect.max_duplicates * cycles:
            problems.append(f"{duplicates} duplicate repl(ies)")
        return problems

    # --- helpers ------------------------------------------------------------------------------

    def _render(self, text: str) -> str:
        assert self.run_dir is not None
        return self.scenario.render(text, self.run_dir.path)

    def _build(self) -> None:
        for build in self.scenario.builds:
            cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
            if cc is None:
                raise WorkloadError(f"{self.scenario.path}: no C compiler (cc) to build {build.output}")
            base = self.scenario.path.parent
            sources = [str(base / self._render(s)) for s in build.sources]
            argv = [cc, *build.flags, "-o", self._render(build.output), *sources]
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise WorkloadError(f"building {build.output} failed: {proc.stderr.strip()}")

    def _wait_ready(self, workload: Workload, spec: ProcessSpec) -> None:
        ready = spec.ready
        if ready.delay is not None:
            time.sleep(ready.delay)  # the scenario asked for a plain delay: nothing to observe
            if not workload.alive():
                raise WorkloadError(f"{workload.name} exited at start: {workload.tail()}")
            return

        def probe() -> bool:
            if not workload.alive():
                raise WorkloadError(f"{workload.name} exited at start: {workload.tail()}")
            if ready.socket:
                path = self._render(ready.socket)
                return os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode)
            if ready.log and ready.pattern:
                return LogProgress(Path(self._render(ready.log)), ready.pattern).mark() > 0
            if ready.events:
                return EventProgress(Path(self._render(ready.events))).count_since(0.0) > 0
            return True  # nothing to wait for: started is ready

        try:
            wait_for(probe, timeout=ready.timeout, interval=0.01)
        except DeadlinePassed:
            raise WorkloadError(
                f"{workload.name} not ready within {ready.timeout:g} s: {workload.tail()}"
            ) from None

    def _progress(self) -> Progress:
        verify = self.scenario.verify
        if verify.events:
            return EventProgress(Path(self._render(verify.events)))
        assert verify.log and verify.pattern
        return LogProgress(Path(self._render(verify.log)), verify.pattern)

    def _tails(self) -> str:
        return "; ".join(
            f"{name}: {w.status()}" + (f" ({w.tail(2)})" if w.tail(2) else "")
            for name, w in self.workloads.items()
        )

    def _finish(self, result: ScenarioResult) -> None:
        """Write the run's own record, then keep or remove its directory."""
        rundir = self.run_dir
        assert rundir is not None
        try:
            (rundir.path / "result.json").write_text(json.dumps(result.to_json(), indent=2))
        except OSError:
            pass
        if self.keep.keeps(result.outcome):
            write_artifacts(rundir.path, result, self.backend)
            result.artifacts = str(rundir.path)
            if self.bundle_into is not None:
                self.bundle_into.mkdir(parents=True, exist_ok=True)
                target = self.bundle_into / f"{rundir.path.name}.tar.gz"
                result.bundle = str(bundle(rundir.path, target))
        else:
            rundir.remove()
            result.artifacts = ""


def _drop_pages(images: Path) -> None:
    """Remove the memory pages of a verified cycle's images; the logs and the small images
    (what a reader of the artifacts looks at) stay."""
    for pages in images.glob("*/pages-*.img"):
        pages.unlink(missing_ok=True)

