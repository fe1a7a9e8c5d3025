"""What /proc says about a process, as CRIU will see it when it dumps it: its place in a tree
and a session, its open files (with their mount and link count) and its memory mappings.

Read only; nothing here stops or changes a process.
"""

from __future__ import annotations

import os
import re
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from harness.proctree import tree_pids

__all__ = ["Fd", "Mapping", "Task", "holders", "read_task", "tree"]

_DELETED = " (deleted)"


@dataclass(frozen=True)
class Fd:
    """One open file descriptor. ``key`` names the open object machine-wide (two fds with the
    same key are the same socket, pipe or FIFO), for the holders() index."""

    fd: int
    target: str  # readlink: "socket:[123]", "pipe:[456]", "/path", "anon_inode:[eventfd]"
    kind: str  # socket, pipe, fifo, file, dir, anon, chr, other
    inode: int
    mnt_id: int | None
    nlink: int | None  # of files: 0 once unlinked
    size: int | None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.inode}" if self.kind in ("socket", "pipe", "fifo") else ""

    @property
    def deleted(self) -> bool:
        return self.target.endswith(_DELETED)

    @property
    def path(self) -> str:
        return self.target.removesuffix(_DELETED)


@dataclass(frozen=True)
class Mapping:
    start: str
    end: str
    perms: str
    path: str  # "" for anonymous memory
    nlink: int | None  # of a mapped file, through /proc/PID/map_files (0 once unlinked)

    @property
    def sysv(self) -> bool:
        return self.path.startswith("/SYSV")

    @property
    def deleted(self) -> bool:
        return self.path.endswith(_DELETED)


@dataclass
class Task:
    pid: int
    name: str
    ppid: int
    pgid: int
    sid: int
    tty_nr: int
    ipc_ns: str
    mount_ids: set[int] = field(default_factory=set)
    fds: list[Fd] = field(default_factory=list)
    maps: list[Mapping] = field(default_factory=list)

    def label(self) -> str:
        return f"pid {self.pid} ({self.name})"


def tree(root: int) -> list[int]:
    """root and its descendants, root first (as CRIU walks the tree it dumps)."""
    return tree_pids(root)


def _stat_fields(pid: int) -> tuple[str, list[str]]:
    text = Path(f"/proc/{pid}/stat").read_text()
    name = text[text.index("(") + 1 : text.rindex(")")]
    return name, text[text.rindex(")") + 2 :].split()


def _kind(target: str, mode: int) -> str:
    if target.startswith("socket:"):
        return "socket"
    if target.startswith("pipe:"):
        return "pipe"
    if target.startswith("anon_inode:"):
        return "anon"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISCHR(mode):
        return "chr"
    return "other"


def _fd(pid: int, fd: int) -> Fd | None:
    base = f"/proc/{pid}/fd/{fd}"
    try:
        target = os.readlink(base)
        st = os.stat(base)
    except OSError:
        return None
    mnt_id = None
    try:
        for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines():
            if line.startswith("mnt_id:"):
                mnt_id = int(line.split()[1])
    except (OSError, ValueError):
        pass
    kind = _kind(target, st.st_mode)
    files = kind in ("file", "fifo", "dir", "chr", "other")
    return Fd(fd, target, kind, st.st_ino, mnt_id, st.st_nlink if files else None,
              st.st_size if kind == "file" else None)


def _maps(pid: int) -> list[Mapping]:
    found = []
    try:
        lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        parts = line.split(maxsplit=5)
        if len(parts) < 5:
            continue
        start, _, end = parts[0].partition("-")
        path = parts[5] if len(parts) == 6 else ""
        nlink = None
        if path.startswith("/"):
            try:
                nlink = os.stat(f"/proc/{pid}/map_files/{start}-{end}").st_nlink
            except OSError:
                pass
        found.append(Mapping(start, end, parts[1], path, nlink))
    return found


def read_task(pid: int) -> Task:
    """The facts of one process; raises OSError (ProcessLookupError, ...) if it is gone."""
    name, fields = _stat_fields(pid)
    # After ")": state ppid pgrp session tty_nr ...
    task = Task(pid, name, int(fields[1]), int(fields[2]), int(fields[3]), int(fields[4]),
                ipc_ns=os.readlink(f"/proc/{pid}/ns/ipc"))
    try:
        for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
            task.mount_ids.add(int(line.split()[0]))
    except (OSError, ValueError, IndexError):
        pass
    try:
        fds = sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        fds = []
    task.fds = [f for n in fds if (f := _fd(pid, n)) is not None]
    task.maps = _maps(pid)
    return task


_KEYED = re.compile(r"^(socket|pipe):\[(\d+)\]$")


def holders() -> dict[str, set[int]]:
    """Every process holding each socket, pipe and FIFO on the machine, by Fd.key."""
    found: dict[str, set[int]] = defaultdict(set)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            names = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for name in names:
            path = f"/proc/{pid}/fd/{name}"
            try:
                target = os.readlink(path)
            except OSError:
                continue
            if m := _KEYED.match(target):
                found[f"{m.group(1)}:{m.group(2)}"].add(pid)
            elif target.startswith("/"):
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if stat.S_ISFIFO(st.st_mode):
                    found[f"fifo:{st.st_ino}"].add(pid)
    return dict(found)
