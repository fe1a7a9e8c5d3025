"""One migration cycle of a running scenario: migrate, then judge what happened.

A migration that succeeded must be followed by progress, with nothing lost and nothing
visibly changed; one that failed must have failed as the scenario expects, by CRIU's own
error line, with the workload going on afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from harness.criu import Backend, CriuOptions
from harness.departure import Arrival, Departure
from harness.difference import Difference, Inspection, describe
from harness.errors import HarnessError, VerificationError
from harness.evidence import drop_pages
from harness.fingerprint import take_tree
from harness.isolation import DEFAULT_ISOLATION, Isolation, criu_options
from harness.migration import Migration, MigrationRecord
from harness.plan import Plan
from harness.process import Workload
from harness.progress import Progress
from harness.result import (
    CycleResult,
    Keep,
    Outcome,
    RoleStats,
    ScenarioResult,
    Step,
)
from harness.rundir import RunDir
from harness.scenario import Expectation, Scenario
from harness.startup import tails
from harness.stats import image_bytes, read_stats
from harness.transport import Transport
from harness.verdict import expected_failure, over_limits
from harness.verification import losses_between

__all__ = ["UNREAD_LAZILY", "Cycles", "images_of", "role_options"]

# Right after a lazy restore, /proc/PID/cmdline reads empty: the kernel reads it from the
# task's memory, whose pages are still at the source (a page fault from another process is not
# served). The look before the resume may show that; the command line is compared again once
# every page has arrived.
UNREAD_LAZILY = ("cmdline: * -> ",)


def images_of(run_dir: RunDir, cycle: int, iterations: int) -> Path:
    """Where a cycle's images go: ``images/`` for a run of one migration."""
    parts = ("images", f"cycle-{cycle}") if iterations > 1 else ("images",)
    return run_dir.subdir(*parts)


def role_options(scenario: Scenario, isolation: Isolation, run_dir: Path, workload: Workload,
                 images_dir: Path, action: str) -> CriuOptions:
    """The options of one role's dump or restore: the scenario's, into the role's cgroup,
    with what its isolation needs."""
    opts = scenario.criu.options(action, images_dir, f"{action}.log")
    if workload.cgroup is not None:
        opts = replace(opts, cgroup=workload.cgroup.path, manage_cgroups="ignore")
    return criu_options(isolation, opts, action, run_dir)


@dataclass
class Cycles:
    """What every cycle of one run shares, and what carries over from one to the next."""

    scenario: Scenario
    backend: Backend
    plan: Plan
    expect: Expectation
    run_dir: RunDir
    workloads: dict[str, Workload]
    progress: Progress
    keep: Keep
    fingerprint: bool = True
    iterations: int = 1
    isolation: Isolation = DEFAULT_ISOLATION
    transport: Transport = field(default_factory=Transport)
    safe_handover: bool = False
    # Between two hosts (run --destination, receive): the source runs the plan's first half
    # and hands over (departure), the destination the second and judges (arrival); the
    # destination's result, once it has one.
    departure: Departure | None = None
    arrival: Arrival | None = None
    arrived: ScenarioResult | None = None
    # Wall-clock time up to which the client's messages are accounted to a cycle.
    verified_until: float = 0.0
    # After the expected CRIU failure: did the workload go on? (None: no such failure.)
    resumed: bool | None = None
    _images: Path = field(init=False, repr=False)

    def run(self, cycle: CycleResult) -> None:
        """Migrate once and judge it into cycle, which the caller already holds: if an
        interrupt ends the migration halfway, what was done so far is in it."""
        n = cycle.cycle
        self._images = images = images_of(self.run_dir, n, self.iterations)
        looks = Inspection(self.plan.freeze) if self.fingerprint else None
        record = MigrationRecord(plan=self.plan.name, phases=cycle.phases, calls=cycle.calls)
        plan = self.plan
        if self.departure is not None:
            plan = plan.departing()
        elif self.arrival is not None:
            plan = plan.arriving()
            record.started = self.arrival.started
            cycle.phases.extend(self.arrival.phases)
            cycle.calls.extend(self.arrival.calls)
            if looks is not None and self.arrival.before is not None:
                looks.before.update(self.arrival.before)
        Migration(
            self.backend,
            plan,
            self._options,
            before_dump=looks.before_dump if looks else None,
            after_restore=looks.after_restore if looks else None,
            transport=self.transport,
            safe_handover=self.safe_handover,
        ).run(self.workloads, record)
        if self.departure is not None and record.error is None:
            # Dumped, and gone: the workload lives on at the destination, which judges it.
            self.arrived = self.departure.arrive(record, looks, self.workloads)
            theirs = self.arrived.cycles[-1] if self.arrived.cycles else CycleResult(
                n, Outcome.ERROR, reason=self.arrived.reason)
            for f in fields(CycleResult):
                setattr(cycle, f.name, getattr(theirs, f.name))
            return
        cycle.outcome, cycle.reason = Outcome.FAILED, ""
        cycle.stats = self._stats(record, images)
        alternative = self.scenario.alternative
        if alternative is not None and (record.error is None) == (self.expect.outcome == "fails"):
            # CRIU did what [expect.or] expects: the run is held to that from now on (the
            # result's `expected` stays the scenario's own: an alternative is no change).
            self.expect = alternative
        if record.error is not None:
            self._failed(cycle, record)
        elif self.expect.outcome == "fails":
            cycle.outcome = Outcome.XPASSED
            cycle.reason = (
                f"expected criu {self.expect.action} to fail with "
                f"{self.expect.signature!r}, but the migration succeeded"
            )
        else:
            self._succeeded(cycle, record, looks)
            if cycle.outcome is Outcome.PASSED and self.keep is not Keep.ALWAYS:
                drop_pages(images)  # many cycles of a passing run must not fill the disk
                drop_pages(self.transport.destination(images))

    def _options(self, role: str, action: str) -> CriuOptions:
        return role_options(self.scenario, self.isolation, self.run_dir.path,
                            self.workloads[role], self._images / role, action)

    def _succeeded(
        self, cycle: CycleResult, record: MigrationRecord, looks: Inspection | None
    ) -> None:
        """The workload must go on, lose nothing, look the same."""
        allowed = self.expect.allowed_differences
        if self.transport.holds_source:
            allowed = (*allowed, *UNREAD_LAZILY)
        found = looks.differences() if looks else []
        if looks is not None and self.transport.holds_source:
            found += self._late_cmdlines(looks)
        cycle.differences = [d.judged(allowed) for d in found]
        unexpected = [d for d in cycle.differences if not d.allowed]
        changed = [f"visible state changed: {describe(unexpected)}"] if unexpected else []
        verify = self.scenario.verify
        # Progress counts from the first resume: a line written right after it is new.
        resumed = [p.started for p in record.phases if p.step is Step.RESUME]
        try:
            self.progress.wait(min(resumed, default=record.finished), verify.min_progress,
                               verify.deadline)
        except VerificationError as exc:
            if self.expect.outcome == "breaks":
                self._broken(cycle, record, str(exc))
                return
            cycle.reason = "; ".join([f"{exc}; {tails(self.workloads)}", *changed])
            return
        if self.expect.outcome == "breaks":
            cycle.outcome = Outcome.XPASSED
            cycle.reason = (
                f"expected the IPC not to come back ({self.expect.signature!r}), but the "
                "workload resumed after the migration"
            )
            return
        window = (record.started, time.time())
        cycle.downtime_ms = self.progress.downtime_ms(window)
        cycle.timeline = self.progress.timeline(window)
        events = self.progress.events()
        if events is not None:
            # What went wrong since the previous cycle was verified is this migration's doing
            # (a request in flight when the freeze came counts for this one).
            since, self.verified_until = self.verified_until, window[1]
            cycle.messages_lost, cycle.client_errors = losses_between(events, since, window[1])
        problems = [*changed, *over_limits(self.expect, cycle.messages_lost,
                                           cycle.client_errors, 0)]
        cycle.outcome = Outcome.FAILED if problems else Outcome.PASSED
        cycle.reason = "; ".join(problems)

    def _late_cmdlines(self, looks: Inspection) -> list[Difference]:
        """The command lines, read again once every page has arrived (see UNREAD_LAZILY)."""
        out = []
        for role, before in looks.before.items():
            try:
                now = take_tree(self.workloads[role].pid)
            except HarnessError as exc:
                out.append(Difference(role, "fingerprint", "", str(exc)))
                continue
            for pid in sorted(before.keys() & now.keys()):
                if before[pid].cmdline != now[pid].cmdline:
                    out.append(Difference(f"{role} (pid {pid})", "cmdline (pages all in)",
                                          " ".join(before[pid].cmdline),
                                          " ".join(now[pid].cmdline)))
        return out

    def _failed(self, cycle: CycleResult, record: MigrationRecord) -> None:
        err = record.error
        assert err is not None
        matched = expected_failure(self.expect, err, record.failed_step)
        cycle.criu_error = matched or err.signature
        if self.expect.outcome != "fails" or matched is None:
            wanted = (
                f" (expected criu {self.expect.action} to fail with {self.expect.signature!r})"
                if self.expect.outcome == "fails" else ""
            )
            handed = "; safe hand-over: the copies were killed, the sources resumed" if (
                record.handed_back) else ""
            cycle.reason = f"criu {record.failed_step} failed: {err}{wanted}{handed}"
            return
        if record.failed_step is Step.RESTORE and not record.handed_back:
            # Nothing to roll back to: the images are all there is, and they do not restore.
            # (A safe hand-over resumed the sources instead: they must go on, as below.)
            # What CRIU made of them before it gave up must be gone: CRIU kills it.
            role = next(p.role for p in reversed(record.phases) if p.step is Step.RESTORE)
            if left := self.workloads[role].members():
                cycle.reason = (f"after the expected restore failure, {role}'s processes "
                                f"are still there: {left}")
                return
            cycle.outcome = Outcome.XFAILED
            cycle.reason = "failed as expected at restore; the workload is lost"
            return
        # The expected failure: now the workload must live on as if nothing happened.
        self.resumed = False
        dead = [name for name, w in self.workloads.items() if not w.alive()]
        if dead:
            cycle.reason = f"after the expected failure, not running: {', '.join(dead)}"
            return
        verify = self.scenario.verify
        try:
            self.progress.wait(time.time(), verify.min_progress, verify.deadline)
        except VerificationError as exc:
            cycle.reason = f"after the expected failure: {exc}"
            return
        self.resumed = True
        cycle.outcome = Outcome.XFAILED
        cycle.reason = "failed as expected; the workload kept running"

    def _broken(self, cycle: CycleResult, record: MigrationRecord, why: str) -> None:
        """CRIU migrated the workload, and it did not resume: as expected when the client's
        first error since the migration contains the scenario's signature."""
        errors = [
            str(e.get("error")) for e in self.progress.events() or []
            if e.get("event") == "error" and e.get("ts", 0) >= record.started
        ]
        first = errors[0] if errors else None
        cycle.client_errors = len(errors)
        signature = self.expect.signature or ""
        if first is not None and signature in first:
            cycle.outcome = Outcome.XFAILED
            cycle.reason = f"migrated, but the IPC did not come back, as expected: client: {first}"
            return
        cycle.reason = (
            f"{why}; expected the client's first error to contain {signature!r}, saw {first!r}"
        )

    def _stats(self, record: MigrationRecord, images: Path) -> dict[str, RoleStats]:
        """Per role: CRIU's statistics, the image size and the harness's time per step."""
        stats: dict[str, RoleStats] = {}
        for role in self.plan.dump:
            # Everything the restore read: at the destination, for a remote transport.
            entry = RoleStats(image_bytes=image_bytes(self.transport.destination(images / role)))
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
