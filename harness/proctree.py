"""A workload's process tree as the kernel lists it: its pids, whether it is stopped, and the
members of the session it leads."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

__all__ = ["descends_from", "is_stopped", "own_pid", "parent", "session_members", "tree_pids",
           "tree_stopped"]


def tree_pids(pid: int) -> list[int]:
    """pid and its descendants, from /proc/PID/task/TID/children: the kernel's own list, far
    quicker than scanning every process (this runs while workloads are frozen)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                children = Path(f"/proc/{current}/task/{tid}/children").read_text().split()
            except OSError:
                continue
            todo += [int(c) for c in children]
    return found


def parent(pid: int) -> int:
    """The pid's parent (0 once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def descends_from(pid: int, ancestors: set[int]) -> bool:
    """pid is one of ancestors, or their descendant: its parents, walked up to the root. Up,
    not down from the ancestors: a process forked while /proc/PID/task/TID/children is read
    may be missing there, never from its own parent link."""
    seen: set[int] = set()
    while pid > 1 and pid not in seen:
        if pid in ancestors:
            return True
        seen.add(pid)
        pid = parent(pid)
    return False


def is_stopped(pid: int) -> bool:
    """Stopped (or traced, or already gone): nothing of it runs."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("T", "t", "Z", "X")


def tree_stopped(pid: int) -> bool:
    """Every task of pid's tree is stopped (or already gone)."""
    return all(is_stopped(member) for member in tree_pids(pid))


def session_members(sid: int) -> list[psutil.Process]:
    """Every process in session sid. Workloads lead their own session, and CRIU restores the
    session id, so this finds a workload's whole tree before and after a migration."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid:
                members.append(proc)
        except (OSError, psutil.Error):
            continue
    return members


def own_pid(pid: int) -> int:
    """The pid as the process itself sees it: in a PID namespace of its own (harness.isolation)
    CRIU keeps that one, while the restore gives the tree new pids outside. OSError if the
    process is gone."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    return pid


def in_syscall(pid: int) -> bool:
    """Blocked in (or stopped inside) a system call, as opposed to running its own code.

    /proc/PID/syscall names the call a stopped task was waiting in, and -1 for a task
    stopped in user space, perhaps halfway through handling a request."""
    try:
        first = Path(f"/proc/{pid}/syscall").read_text().split(maxsplit=1)[0]
    except (OSError, IndexError):
        return False
    return first not in ("-1", "running")
