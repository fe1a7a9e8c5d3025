"""The overlapped plans: every role dumped at once, then every role restored at once.

The article's order only matters for when each side runs again: frozen and quiesced as
server-first, the roles are dumped side by side and restored side by side (each left stopped,
as it was dumped), and only then resumed, the server first. Each CRIU runs in a thread of its
own, which waits for it to the end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

from harness.errors import CriuError
from harness.process import Workload
from harness.record import MigrationRecord
from harness.result import Step

if TYPE_CHECKING:
    from harness.migration import Migration

__all__ = ["dump_together", "restore_together", "together"]


def dump_together(
    m: Migration, record: MigrationRecord, workloads: dict[str, Workload], dumped: list[str]
) -> None:
    """Every role looked at (while all are stopped), then all dumped at once; raise the
    first CRIU failure once every dump has ended, with ``dumped`` naming those that
    succeeded (the rollback restores them)."""
    for role in m.plan.dump:
        m.look_before(record, role, workloads[role])
    errors = together([
        (role, partial(m.dump_role, record, role, workloads[role])) for role in m.plan.dump
    ])
    dumped.extend(role for role in m.plan.dump if role not in errors)
    for role in m.plan.dump:
        if role in errors:
            raise errors[role]


def restore_together(
    m: Migration, record: MigrationRecord, workloads: dict[str, Workload]
) -> None:
    """Every role restored at once (each comes back stopped, as it was dumped), then looked
    at, then resumed in the plan's order. A failed restore is the record's error; the
    roles that were restored are resumed all the same, as in the sequential order."""
    errors = together([
        (role, partial(m.restore_role, record, role, workloads[role]))
        for role in m.plan.restore
    ])
    failed = [role for role in m.plan.restore if role in errors]
    if failed:
        record.error, record.failed_step = errors[failed[0]], Step.RESTORE
    for role in m.plan.restore:
        if role not in errors:
            m.look_after(record, role, workloads[role])
    for role in m.plan.restore:
        if role not in errors:
            m.resume(record, role, workloads[role])


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
