"""One migration of a set of workloads, step by step as a plan orders it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial

import psutil

from harness import handover, reaping
from harness.criu import Backend, CriuCall, CriuOptions
from harness.errors import CriuError, WorkloadError
from harness.plan import Plan
from harness.process import Workload
from harness.proctree import tree_pids
from harness.result import Phase, Step
from harness.sockets import queued_bytes
from harness.transport import Transport
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
    # A safe hand-over gave up: the copies were killed and the sources resumed.
    handed_back: bool = False


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
        self._sources: dict[str, list[int]] = {}
        # The roles restored elsewhere: a held source of any other one was given back.
        self._restored: set[str] = set()
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
        record.started = time.time()
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
                with _phase(record, Step.FREEZE, role):
                    workloads[role].freeze()
                frozen.append(role)
            for role in self.plan.quiesce:
                with _phase(record, Step.QUIESCE, role):
                    self._quiesce(workloads[role], refreeze=role in frozen)
            if self.plan.overlap:
                self._dump_together(record, workloads, dumped)
            else:
                for role in self.plan.dump:
                    self._look_before(record, role, workloads[role])
                    self._dump(record, role, workloads[role])
                    dumped.append(role)
        except CriuError as err:
            record.error, record.failed_step = err, Step.DUMP
            self._rollback(record, workloads, dumped, frozen)
            record.finished = time.time()
            return record
        if self.safe_handover:
            self._hand_over(record, workloads)
        elif self.plan.overlap:
            self._restore_together(record, workloads)
        else:
            for role in self.plan.restore:
                try:
                    self._restore(record, role, workloads[role])
                except CriuError as err:
                    record.error, record.failed_step = err, Step.RESTORE
                    break
                self._look_after(record, role, workloads[role])
                self._resume(record, role, workloads[role])
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
            if role not in self._restored:
                workloads[role].thaw()  # its dump was given up: the source is the workload
                continue
            with _phase(record, Step.REAP, role):
                reaping.reap(pids, timeout=10.0)
        self._held.clear()

    def _look_before(self, record: MigrationRecord, role: str, workload: Workload) -> None:
        if self.before_dump is not None:
            with _phase(record, Step.INSPECT, role):
                self.before_dump(role, workload)

    def _look_after(self, record: MigrationRecord, role: str, workload: Workload) -> None:
        if self.after_restore is not None:
            with _phase(record, Step.INSPECT, role):
                self.after_restore(role, workload)

    def _dump(self, record: MigrationRecord, role: str, workload: Workload) -> None:
        """Dump a role and reap what the dump killed, so its pids are free for the restore
        (a transport that holds the dumped tree has it collected after the restores)."""
        workload.note_tree()  # its children die with it: reap() collects them
        opts = self._dump_options(role)
        kept = self.safe_handover and not self.transport.holds_source
        with _phase(record, Step.DUMP, role):
            self.transport.dump(self.backend, workload.pid, opts, record.calls)
        if self.transport.holds_source:
            self._held[role] = tree_pids(workload.pid)
        if kept:
            self._sources[role] = tree_pids(workload.pid)
        if self.transport.holds_source or kept:
            return
        with _phase(record, Step.REAP, role):
            workload.reap()

    def _dump_options(self, role: str) -> CriuOptions:
        opts = self.options_for(role, "dump")
        if self.safe_handover and not self.transport.holds_source:
            opts = replace(opts, leave_stopped=True)  # kept until the copy is verified
        return opts

    def _restore(self, record: MigrationRecord, role: str, workload: Workload) -> None:
        with _phase(record, Step.RESTORE, role):
            call = self.transport.restore(self.backend, self.options_for(role, "restore"),
                                          record.calls)
            assert call.restored_pid is not None
            workload.adopt(call.restored_pid)
            self._restored.add(role)

    @staticmethod
    def _resume(record: MigrationRecord, role: str, workload: Workload) -> None:
        with _phase(record, Step.RESUME, role):
            # CRIU restores a task stopped if it was stopped at dump: let it run.
            workload.thaw()

    def _dump_together(
        self, record: MigrationRecord, workloads: dict[str, Workload], dumped: list[str]
    ) -> None:
        """Every role looked at (while all are stopped), then all dumped at once; raise the
        first CRIU failure once every dump has ended, with ``dumped`` naming those that
        succeeded (the rollback restores them)."""
        for role in self.plan.dump:
            self._look_before(record, role, workloads[role])
        errors = together([
            (role, partial(self._dump, record, role, workloads[role])) for role in self.plan.dump
        ])
        dumped.extend(role for role in self.plan.dump if role not in errors)
        for role in self.plan.dump:
            if role in errors:
                raise errors[role]

    def _restore_together(self, record: MigrationRecord, workloads: dict[str, Workload]) -> None:
        """Every role restored at once (each comes back stopped, as it was dumped), then looked
        at, then resumed in the plan's order. A failed restore is the record's error; the
        roles that were restored are resumed all the same, as in the sequential order."""
        errors = together([
            (role, partial(self._restore, record, role, workloads[role]))
            for role in self.plan.restore
        ])
        failed = [role for role in self.plan.restore if role in errors]
        if failed:
            record.error, record.failed_step = errors[failed[0]], Step.RESTORE
        for role in self.plan.restore:
            if role not in errors:
                self._look_after(record, role, workloads[role])
        for role in self.plan.restore:
            if role not in errors:
                self._resume(record, role, workloads[role])

    def _hand_over(self, record: MigrationRecord, workloads: dict[str, Workload]) -> None:
        """Restore every role beside its stopped source (at once under an overlapped plan),
        verify each copy, then kill the sources and resume the copies in the plan's order; if
        anything fails, kill the copies and resume the sources (harness.handover)."""
        roles = self.plan.restore
        # (Not with a transport that holds the source: lazy's ends with its transfer.)
        sources = {role: self._sources.get(role, []) for role in roles}
        parked = handover.park(pid for pids in sources.values() for pid in pids)
        restored: dict[str, int] = {}

        def restore(role: str) -> None:
            with _phase(record, Step.RESTORE, role):
                call = self.transport.restore(self.backend, self.options_for(role, "restore"),
                                              record.calls)
                assert call.restored_pid is not None
                restored[role] = call.restored_pid

        errors: dict[str, CriuError] = {}
        if self.plan.overlap:
            errors = together([(role, partial(restore, role)) for role in roles])
        else:
            for role in roles:
                try:
                    restore(role)
                except CriuError as err:
                    errors[role] = err
                    break
        problems = []
        if not errors:
            for role in roles:
                copy = Workload(name=role, argv=[], run_dir=workloads[role].run_dir,
                                pid=restored[role])
                self._look_after(record, role, copy)
                if not copy.alive():
                    problems.append(f"{role}: restored as pid {restored[role]}, then gone")
        if errors or problems:
            self._hand_back(record, workloads, sources, restored, parked)
            first = next((errors[r] for r in roles if r in errors), None)
            record.error = first or CriuError(action="restore", pid=None, log_path=None,
                                              signature="; ".join(problems))
            record.failed_step = Step.RESTORE
            return
        parked.drop()
        for role in roles:
            if role in self._sources:
                with _phase(record, Step.REAP, role):
                    handover.kill(self._sources.pop(role))
            workloads[role].adopt(restored[role])
            self._restored.add(role)
        for role in roles:
            self._resume(record, role, workloads[role])

    def _hand_back(
        self,
        record: MigrationRecord,
        workloads: dict[str, Workload],
        sources: dict[str, list[int]],
        restored: dict[str, int],
        parked: handover.Parked,
    ) -> None:
        """The hand-over failed: kill every copy (and what a failed restore left in the role's
        cgroup), give the sources their socket names back and let them run."""
        for role in self.plan.restore:
            with _phase(record, Step.ROLLBACK, role) as phase:
                keep = set(sources[role])
                copies = set(tree_pids(restored[role])) if role in restored else set()
                copies |= {pid for pid in workloads[role].members() if pid not in keep}
                if handover.kill(copies):
                    phase.ok = False
        parked.put_back()
        for role in self.plan.restore:
            workloads[role].thaw()
        self._sources.clear()
        record.handed_back = True

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
            with _phase(record, Step.ROLLBACK, role) as phase:
                if role in self._sources:
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
                    phase.ok = False
        for role in frozen:
            workloads[role].thaw()
        for role in dumped:
            workloads[role].thaw()


def together(actions: Sequence[tuple[str, Callable[[], None]]]) -> dict[str, CriuError]:
    """Run the actions at once, one thread each, and wait for all of them: a CRIU call is
    never abandoned halfway (an interrupt of the caller waits for the others to end first, as
    CriuProcess does for one). Each action's CRIU failure comes back under its name; any other
    exception is raised once all have ended.

    Each thread waits for its own CRIU to the end: CRIU's parent-death signal fires when the
    thread that started it ends, not the process."""
    errors: dict[str, CriuError] = {}
    other: list[BaseException] = []

    def run(name: str, action: Callable[[], None]) -> None:
        try:
            action()
        except CriuError as err:
            errors[name] = err
        except BaseException as exc:  # noqa: BLE001 (re-raised in the caller's thread)
            other.append(exc)

    threads = [threading.Thread(target=run, args=item, name=f"criu-{item[0]}") for item in actions]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException:
        for thread in threads:
            thread.join()
        raise
    if other:
        raise other[0]
    return errors


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
