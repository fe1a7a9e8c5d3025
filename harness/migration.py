"""One migration of a set of workloads, step by step as a plan orders it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psutil

from harness.criu import Backend, CriuCall, CriuOptions
from harness.errors import CriuError, WorkloadError
from harness.plan import Plan
from harness.process import Workload
from harness.result import Phase, Step
from harness.sockets import queued_bytes
from harness.waiting import wait_for


@dataclass
class MigrationRecord:
    """What a migration did; ``error`` is the CRIU failure that stopped it, if any."""

    plan: str
    phases: list[Phase] = field(default_factory=list)
    calls: list[CriuCall] = field(default_factory=list)
    error: CriuError | None = None
    failed_step: Step | None = None
    started: float = 0.0
    finished: float = 0.0


def at_rest(workload: Workload) -> bool:
    """Blocked in a system call (not between two) with nothing queued on its unix sockets.

    Only a running task can show this: a stopped one names the call it was in even when the
    call had already returned (stopped on its way out, a request read but not yet answered),
    so a task is never taken to be at rest while stopped."""
    return (
        workload.status() == psutil.STATUS_SLEEPING
        and workload.in_syscall()
        and queued_bytes(workload.pid) == 0
    )


OptionsFor = Callable[[str, str], CriuOptions]  # (role, action) -> options
# Called with (role, workload) at a fixed point of the migration (see Migration.__init__).
Hook = Callable[[str, Workload], None]


class Migration:
    """Freeze, dump, reap, restore and resume workloads in the order a plan gives.

    A dump that fails rolls back: what was already dumped (and so killed) is restored from its
    images and everything frozen is thawed, so the workload goes on as if nothing happened.
    """

    def __init__(
        self,
        backend: Backend,
        plan: Plan,
        options_for: OptionsFor,
        before_dump: Hook | None = None,
        after_restore: Hook | None = None,
    ) -> None:
        self.backend = backend
        self.plan = plan
        self.options_for = options_for
        # Right before a role's dump (after freeze and quiesce) and right after its restore,
        # before the SIGCONT: if the plan freezes the role, both see it stopped, comparably.
        self.before_dump = before_dump
        self.after_restore = after_restore

    def run(
        self, workloads: dict[str, Workload], record: MigrationRecord | None = None
    ) -> MigrationRecord:
        """Migrate; a caller that passes the record to fill keeps what was done so far even
        when an interrupt ends the migration halfway."""
        if record is None:
            record = MigrationRecord(plan=self.plan.name)
        record.started = time.time()
        frozen: list[str] = []
        dumped: list[str] = []
        try:
            for role in self.plan.freeze:
                with _phase(record, Step.FREEZE, role):
                    workloads[role].freeze()
                frozen.append(role)
            for role in self.plan.quiesce:
                with _phase(record, Step.QUIESCE, role):
                    self._quiesce(workloads[role], refreeze=role in frozen)
            for role in self.plan.dump:
                if self.before_dump is not None:
                    with _phase(record, Step.INSPECT, role):
                        self.before_dump(role, workloads[role])
                workloads[role].note_tree()  # its children die with it: reap() collects them
                with _phase(record, Step.DUMP, role):
                    self._call(record, self.backend.dump, workloads[role].pid, role, "dump")
                with _phase(record, Step.REAP, role):
                    workloads[role].reap()
                dumped.append(role)
        except CriuError as err:
            record.error, record.failed_step = err, Step.DUMP
            self._rollback(record, workloads, dumped, frozen)
            record.finished = time.time()
            return record
        for role in self.plan.restore:
            try:
                with _phase(record, Step.RESTORE, role):
                    call = self._call(record, self.backend.restore, None, role, "restore")
                    assert call.restored_pid is not None
                    workloads[role].adopt(call.restored_pid)
            except CriuError as err:
                record.error, record.failed_step = err, Step.RESTORE
                break
            if self.after_restore is not None:
                with _phase(record, Step.INSPECT, role):
                    self.after_restore(role, workloads[role])
            with _phase(record, Step.RESUME, role):
                # CRIU restores a task stopped if it was stopped at dump: let it run.
                workloads[role].thaw()
        record.finished = time.time()
        return record

    @staticmethod
    def _quiesce(workload: Workload, timeout: float = 5.0, refreeze: bool = True) -> None:
        """Let a frozen workload run until it is at rest, then freeze it again. The others
        stay frozen, so no new request arrives; its answers wait in their receive queues.

        Always one round, even if it looks at rest while stopped (see at_rest): once seen
        blocked with nothing queued, nothing can wake it before the SIGSTOP. A workload the
        plan does not freeze is only waited for, and left running."""
        workload.thaw()
        try:
            wait_for(lambda: at_rest(workload), timeout=timeout, interval=0.0005,
                     error=lambda _: WorkloadError(
                         f"{workload.name} did not come to rest within {timeout:g} s"))
        finally:
            if refreeze:
                workload.freeze()

    def _call(
        self,
        record: MigrationRecord,
        action: Callable[..., CriuCall],
        pid: int | None,
        role: str,
        name: str,
    ) -> CriuCall:
        opts = self.options_for(role, name)
        # The record gets the call as it starts: a failed or interrupted one is evidence too.
        if name == "dump":
            return action(pid, opts, calls=record.calls)
        return action(opts, calls=record.calls)

    def _rollback(
        self,
        record: MigrationRecord,
        workloads: dict[str, Workload],
        dumped: list[str],
        frozen: list[str],
    ) -> None:
        for role in dumped:
            with _phase(record, Step.ROLLBACK, role) as phase:
                try:
                    opts = self.options_for(role, "restore")
                    call = self.backend.restore(opts, calls=record.calls)
                    assert call.restored_pid is not None
                    workloads[role].adopt(call.restored_pid)
                except CriuError:
                    phase.ok = False
        for role in frozen:
            workloads[role].thaw()
        for role in dumped:
            workloads[role].thaw()


@contextmanager
def _phase(record: MigrationRecord, step: Step, role: str) -> Iterator[Phase]:
    """Time a step into the record; a step that raises is marked not ok."""
    phase = Phase(step, role, time.time(), 0.0)
    record.phases.append(phase)
    try:
        yield phase
    except BaseException:
        phase.ok = False
        raise
    finally:
        phase.finished = time.time()
