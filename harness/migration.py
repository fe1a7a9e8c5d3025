"""One migration of a set of workloads, step by step as a plan orders it.

The steps of one role (freeze, quiesce, look, dump, reap, restore, resume) and the sequential
order are here; the overlapped plans run them side by side (harness.overlap), and a safe
hand-over restores beside the kept source (harness.handover).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import psutil

from harness import handover, overlap, reaping
from harness.criu import Backend, CriuOptions
from harness.errors import CriuError, WorkloadError
from harness.plan import Plan
from harness.process import Workload
from harness.proctree import in_syscall, tree_pids
from harness.record import MigrationRecord, phase
from harness.result import Step
from harness.sockets import queued_bytes
from harness.transport import Transport
from harness.waiting import wait_for

__all__ = ["Migration", "MigrationRecord", "at_rest"]


def at_rest(workload: Workload) -> bool:
    """Blocked in a system call (not between two) with nothing queued on its unix sockets.

    Only a running task can show this: a stopped one names the call it was in even when the
    call had already returned (stopped on its way out, a request read but not yet answered),
    so a task is never taken to be at rest while stopped."""
    return (
        workload.status() == psutil.STATUS_SLEEPING
        and in_syscall(workload.pid)
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
        transport: Transport | None = None,
        safe_handover: bool = False,
    ) -> None:
        self.backend = backend
        self.plan = plan
        self.options_for = options_for
        # How the pages travel (harness.transport); local files by default.
        self.transport = transport or Transport()
        # Dumped trees the transport still holds (lazy): collected once it is done with them.
        self._held: dict[str, list[int]] = {}
        # Keep every source, stopped, until every copy is restored and verified
        # (harness.handover); the dumped trees kept so, by role.
        self.safe_handover = safe_handover
        self.sources: dict[str, list[int]] = {}
        # The roles restored elsewhere: a held source of any other one was given back.
        self.restored: set[str] = set()
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
        try:
            return self._run(workloads, record)
        finally:
            self.backend.cool()

    def _run(self, workloads: dict[str, Workload], record: MigrationRecord) -> MigrationRecord:
        # Set already if the migration began on another host (harness.receiver).
        record.started = record.started or time.time()
        frozen: list[str] = []
        dumped: list[str] = []
        # Page servers, connections and the dumps' CRIU are set up while the workload still
        # runs: none of that counts in the downtime.
        self.transport.prepare([self.options_for(role, "dump").images_dir
                                for role in self.plan.dump])
        for role in self.plan.dump:
            self.transport.warm(self.backend, "dump", self._dump_options(role), wait=True)
        for role in self.plan.restore:
            # In the role's cgroup, beside the workload, but never one of its members
            # (harness.criu.process.running_criu): never frozen, resumed or killed with it.
            self.transport.warm(self.backend, "restore", self.options_for(role, "restore"),
                                wait=True)
        try:
            for role in self.plan.freeze:
                with phase(record, Step.FREEZE, role):
                    workloads[role].freeze()
                frozen.append(role)
            for role in self.plan.quiesce:
                with phase(record, Step.QUIESCE, role):
                    self._quiesce(workloads[role], refreeze=role in frozen)
            if self.plan.overlap:
                overlap.dump_together(self, record, workloads, dumped)
            else:
                for role in self.plan.dump:
                    self.look_before(record, role, workloads[role])
                    self.dump_role(record, role, workloads[role])
                    dumped.append(role)
        except CriuError as err:
            record.error, record.failed_step = err, Step.DUMP
            self._rollback(record, workloads, dumped, frozen)
            record.finished = time.time()
            return record
        if self.safe_handover:
            handover.hand_over(self, record, workloads)
        elif self.plan.overlap:
            overlap.restore_together(self, record, workloads)
        else:
            for role in self.plan.restore:
                try:
                    self.restore_role(record, role, workloads[role])
                except CriuError as err:
                    record.error, record.failed_step = err, Step.RESTORE
                    break
                self.look_after(record, role, workloads[role])
                self.resume(record, role, workloads[role])
        self._finish(record, workloads)
        record.finished = time.time()
        return record

    def _finish(self, record: MigrationRecord, workloads: dict[str, Workload]) -> None:
        """Wait for the transport to be done (lazy: every page served), then collect the
        dumped trees it held; a held source that was never restored elsewhere runs again."""
        failures = self.transport.finish()
        if failures and record.error is None:
            record.error, record.failed_step = failures[0], Step.RESTORE
        for role, pids in self._held.items():
            if role not in self.restored:
                workloads[role].thaw()  # its dump was given up: the source is the workload
                continue
            with phase(record, Step.REAP, role):
                reaping.reap(pids, timeout=10.0)
        self._held.clear()

    def look_before(self, record: MigrationRecord, role: str, workload: Workload) -> None:
        if self.before_dump is not None:
            with phase(record, Step.INSPECT, role):
                self.before_dump(role, workload)

    def look_after(self, record: MigrationRecord, role: str, workload: Workload) -> None:
        if self.after_restore is not None:
            with phase(record, Step.INSPECT, role):
                self.after_restore(role, workload)

    def dump_role(self, record: MigrationRecord, role: str, workload: Workload) -> None:
        """Dump a role and reap what the dump killed, so its pids are free for the restore
        (a transport that holds the dumped tree has it collected after the restores)."""
        workload.note_tree()  # its children die with it: reap() collects them
        opts = self._dump_options(role)
        kept = self.safe_handover and not self.transport.holds_source
        with phase(record, Step.DUMP, role):
            self.transport.dump(self.backend, workload.pid, opts, record.calls)
        if self.transport.holds_source:
            self._held[role] = tree_pids(workload.pid)
        if kept:
            self.sources[role] = tree_pids(workload.pid)
        if self.transport.holds_source or kept:
            return
        with phase(record, Step.REAP, role):
            workload.reap()

    def _dump_options(self, role: str) -> CriuOptions:
        opts = self.options_for(role, "dump")
        if self.safe_handover and not self.transport.holds_source:
            opts = replace(opts, leave_stopped=True)  # kept until the copy is verified
        return opts

    def restore_role(self, record: MigrationRecord, role: str, workload: Workload) -> None:
        with phase(record, Step.RESTORE, role):
            call = self.transport.restore(self.backend, self.options_for(role, "restore"),
                                          record.calls)
            assert call.restored_pid is not None
            workload.adopt(call.restored_pid)
            self.restored.add(role)

    @staticmethod
    def resume(record: MigrationRecord, role: str, workload: Workload) -> None:
        with phase(record, Step.RESUME, role):
            # CRIU restores a task stopped if it was stopped at dump: let it run.
            workload.thaw()

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

    def _rollback(
        self,
        record: MigrationRecord,
        workloads: dict[str, Workload],
        dumped: list[str],
        frozen: list[str],
    ) -> None:
        for role in dumped:
            with phase(record, Step.ROLLBACK, role) as step:
                if role in self.sources:
                    continue  # left stopped by its dump: it only needs to run again
                if self.transport.holds_source:
                    # Never restored elsewhere: let go of the dump, and the task is as it was.
                    self.transport.abort(self.options_for(role, "dump").images_dir)
                    self._held.pop(role, None)
                    continue
                try:
                    # The record gets the call as it starts: a failed one is evidence too.
                    call = self.transport.restore(self.backend, self.options_for(role, "restore"),
                                                  record.calls)
                    assert call.restored_pid is not None
                    workloads[role].adopt(call.restored_pid)
                except CriuError:
                    step.ok = False
        for role in frozen:
            workloads[role].thaw()
        for role in dumped:
            workloads[role].thaw()


