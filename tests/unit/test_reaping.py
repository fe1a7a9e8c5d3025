"""Reaping, on tiny real processes: exit statuses collected, orphans adopted by the subreaper
collected, and no other child's status stolen."""

from __future__ import annotations

import os
import signal
import sys
import time

import psutil
import pytest

from harness import reaping
from harness.waiting import wait_for


def spawn(*argv: str, session: bool = False) -> int:
    return os.posix_spawnp(argv[0], list(argv), os.environ, setsid=session)


def zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(autouse=True, scope="module")
def subreaper() -> None:
    reaping.become_subreaper()  # as the harness is (the Supervisor makes it so, too)


def test_exit_codes_are_collected_and_the_pids_freed() -> None:
    ok, failed, killed = spawn("true"), spawn("false"), spawn("sleep", "60")
    os.kill(killed, signal.SIGKILL)
    reaped = reaping.reap([ok, failed, killed], timeout=10)
    assert reaped.exit_codes == {ok: 0, failed: 1, killed: -signal.SIGKILL}
    assert reaped.alive == []
    assert not any(psutil.pid_exists(pid) for pid in (ok, failed, killed))


def test_what_is_still_running_at_the_deadline_is_named() -> None:
    pid = spawn("sleep", "60")
    try:
        started = time.monotonic()
        reaped = reaping.reap([pid], timeout=0.1)
        assert reaped.alive == [pid] and reaped.exit_codes == {}
        assert time.monotonic() - started < 2
    finally:
        os.kill(pid, signal.SIGKILL)
        assert reaping.reap([pid], timeout=10).exit_codes == {pid: -signal.SIGKILL}


def test_a_pid_already_gone_has_no_exit_code() -> None:
    pid = spawn("true")
    os.waitpid(pid, 0)
    assert reaping.reap([pid], timeout=1).exit_codes == {pid: None}


# A parent that forks a child which exits at once, and exits itself a moment later without
# waiting for it: the child is a zombie of the parent first, then an orphan of the harness.
ORPHAN = """
import os, sys, time
child = os.fork()
if child == 0:
    os._exit(3)
print(child, flush=True)
time.sleep(0.5)
"""


def test_an_orphan_is_collected_once_it_is_ours() -> None:
    read, write = os.pipe()
    parent = os.posix_spawn(sys.executable, [sys.executable, "-c", ORPHAN], os.environ,
                            file_actions=[(os.POSIX_SPAWN_DUP2, write, 1)])
    os.close(write)
    with os.fdopen(read) as out:
        child = int(out.readline())
    wait_for(lambda: zombie(child), timeout=10)
    assert psutil.Process(child).ppid() == parent  # not ours yet: its parent still holds it
    reaped = reaping.reap([child], timeout=10)
    assert reaped.exit_codes == {child: 3} and reaped.alive == []
    assert not psutil.pid_exists(child)
    assert reaping.reap([parent], timeout=10).exit_codes == {parent: 0}


def test_reap_zombies_takes_only_the_sessions_asked_for() -> None:
    workload, other = spawn("true", session=True), spawn("false", session=True)
    wait_for(lambda: zombie(workload) and zombie(other), timeout=10)
    assert reaping.reap_zombies({workload}) == [workload]
    assert not psutil.pid_exists(workload)
    # The other child's exit status is still there for whoever owns it.
    assert zombie(other)
    assert os.waitstatus_to_exitcode(os.waitpid(other, 0)[1]) == 1
