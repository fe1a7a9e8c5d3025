"""Visible state of a workload's processes, taken before a dump and after a restore, and compared.

What a process can see of itself must come back as it was: its pid, command line, working
directory, open files (by fd number), memory layout, limits and state. What the kernel renames
on any restore by nature (socket and pipe inode numbers) is described instead of copied: a
socket by its type and bound path, a pipe by which fds share it.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import psutil

from harness.errors import WorkloadError
from harness.fields import Fields, JsonObject
from harness.proctree import tree_pids, tree_stopped
from harness.waiting import poll

__all__ = [
    "Difference", "Fd", "Fingerprint", "Inspection", "describe", "diff", "diff_trees", "take",
    "take_tree",
]

# /proc/net/unix "Type" column (include/linux/net.h).
_UNIX_TYPES = {"0001": "stream", "0002": "dgram", "0005": "seqpacket"}
# Mappings left out of the comparison. None, measured on this machine: with the same kernel on
# both sides CRIU puts [vdso], [vvar] and [vvar_vclock] back where they were, with their sizes,
# and the maps are compared merged by path and permissions, never by address. A restore on
# another kernel would change the vDSO's size legitimately (6.13 split [vvar] in two): name
# those mappings here for such a migration.
IGNORED_MAPPINGS: tuple[str, ...] = ()
# The rlimits a process can read with getrlimit(), by the name /proc/PID/limits uses.
_RLIMITS = {
    name.removeprefix("RLIMIT_").lower(): getattr(resource, name)
    for name in dir(resource)
    if name.startswith("RLIMIT_") and name != "RLIMIT_OFILE"  # OFILE is NOFILE's alias
}


@dataclass(frozen=True)
class Fd:
    """One open file descriptor as the process sees it (never an inode number)."""

    kind: str  # file, socket, pipe, anon, other
    target: str  # the path, "unix dgram /path", "pipe#1", "anon_inode:[eventpoll]"
    flags: str = ""  # access mode and status flags (octal, as /proc/PID/fdinfo gives them)
    pos: int | None = None  # file offset, regular files only

    def describe(self) -> str:
        extra = f" flags {self.flags}" if self.flags else ""
        extra += f" pos {self.pos}" if self.pos is not None else ""
        return f"{self.kind} {self.target}{extra}"


@dataclass(frozen=True)
class Fingerprint:
    """What one process looks like from the inside, at one moment."""

    pid: int
    cmdline: tuple[str, ...]
    cwd: str
    state: str  # the /proc/PID/stat letter: T stopped, S sleeping, R running, ...
    fds: dict[int, Fd] = field(default_factory=dict)
    # (path or [heap]/[stack]/"[anon]", permissions) -> total size in bytes: merged, because
    # how the kernel splits adjacent areas is not something a process can rely on.
    maps: dict[tuple[str, str], int] = field(default_factory=dict)
    rlimits: dict[str, tuple[int, int]] = field(default_factory=dict)

    def running(self) -> Fingerprint:
        """Without what a running process changes by itself: its state and file offsets."""
        fds = {n: replace(fd, pos=None) for n, fd in self.fds.items()}
        return replace(self, state="", fds=fds)


@dataclass(frozen=True)
class Difference:
    """One thing that changed across the migration; ``process`` names the role (and the pid)."""

    process: str
    field: str
    before: str
    after: str
    allowed: bool = False  # the scenario's allowed_differences name it: reported, not failed

    def __str__(self) -> str:
        return f"{self.process}: {self.change}"

    @property
    def change(self) -> str:
        """The difference without the process: what allowed_differences patterns match."""
        return f"{self.field}: {self.before} -> {self.after}"

    def allowed_by(self, patterns: Iterable[str]) -> bool:
        return any(fnmatchcase(self.change, p) for p in patterns)

    def judged(self, patterns: Iterable[str]) -> Difference:
        """This difference, marked allowed if one of the patterns names it."""
        return replace(self, allowed=self.allowed_by(patterns))

    def to_json(self) -> JsonObject:
        return {"process": self.process, "field": self.field, "before": self.before,
                "after": self.after, "allowed": self.allowed}

    @classmethod
    def from_json(cls, f: Fields) -> Difference:
        return cls(f.text("process"), f.text("field"), f.text("before"), f.text("after"),
                   f.boolean("allowed", False))


def take(pid: int) -> Fingerprint:
    """The fingerprint of one live process; raise WorkloadError if it is gone."""
    try:
        proc = psutil.Process(pid)
        cmdline = tuple(proc.cmdline())
        cwd = proc.cwd()
        state = _state(pid)
        fds = _fds(pid)
        maps = _maps(pid)
        rlimits = {name: tuple(proc.rlimit(res)) for name, res in sorted(_RLIMITS.items())}
        own = own_pid(pid)
    except (psutil.Error, OSError) as exc:
        raise WorkloadError(f"cannot take the fingerprint of pid {pid}: {exc}") from None
    return Fingerprint(own, cmdline, cwd, state, fds, maps, rlimits)  # type: ignore[arg-type]


def own_pid(pid: int) -> int:
    """The pid as the process itself sees it: in a PID namespace of its own (harness.isolation)
    CRIU keeps that one, while the restore gives the tree new pids outside."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    return pid


def take_tree(pid: int) -> dict[int, Fingerprint]:
    """Fingerprints of pid and all its descendants (CRIU dumps and restores the whole tree),
    by the pid each sees itself as."""
    looks = (take(p) for p in sorted(tree_pids(pid)))
    return {fp.pid: fp for fp in looks}


def diff(before: Fingerprint, after: Fingerprint, process: str = "") -> list[Difference]:
    """Everything that differs between two fingerprints of the same process."""
    who = process or str(before.pid)
    out: list[Difference] = []

    def differ(name: str, a: object, b: object) -> None:
        if a != b:
            out.append(Difference(who, name, _show(a), _show(b)))

    differ("pid", before.pid, after.pid)
    differ("cmdline", " ".join(before.cmdline), " ".join(after.cmdline))
    differ("cwd", before.cwd, after.cwd)
    differ("state", before.state, after.state)
    for fd in sorted(before.fds.keys() | after.fds.keys()):
        a, b = before.fds.get(fd), after.fds.get(fd)
        differ(f"fd {fd}", a.describe() if a else None, b.describe() if b else None)
    for key in sorted(before.maps.keys() | after.maps.keys()):
        differ(f"maps {key[1]} {key[0]}", before.maps.get(key), after.maps.get(key))
    for name in sorted(before.rlimits.keys() | after.rlimits.keys()):
        differ(f"rlimit {name}", before.rlimits.get(name), after.rlimits.get(name))
    return out


def diff_trees(
    before: dict[int, Fingerprint], after: dict[int, Fingerprint], role: str
) -> list[Difference]:
    """Differences between two fingerprints of a process tree, matched by pid (CRIU keeps pids)."""
    out: list[Difference] = []
    for pid in sorted(before.keys() | after.keys()):
        who = f"{role} (pid {pid})"
        a, b = before.get(pid), after.get(pid)
        if a is None or b is None:
            out.append(Difference(who, "process", "present" if a else "absent",
                                  "present" if b else "absent"))
            continue
        out.extend(diff(a, b, who))
    return out


def _show(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, tuple) and len(value) == 2:
        return f"{_limit(value[0])}/{_limit(value[1])}"
    return str(value)


def _limit(value: object) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


def _state(pid: int) -> str:
    # The command name may hold spaces and parentheses: the state follows the last ")".
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0]


def _sockets(pid: int, inet: bool = False) -> dict[str, str]:
    """Socket inode -> "unix <type> <path>" (or "tcp <local address>" with inet), from the
    process's own network namespace."""
    found: dict[str, str] = {}
    try:
        lines = Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]
    except OSError:
        return found
    for line in lines:
        cols = line.split()
        if len(cols) < 7:
            continue
        kind = _UNIX_TYPES.get(cols[4], f"type{cols[4]}")
        path = cols[7] if len(cols) > 7 else "(unbound)"
        found[cols[6]] = f"unix {kind} {path}"
    # Reading /proc/net/tcp takes milliseconds (the kernel walks its hash tables) and the
    # fingerprint is taken while the workload is stopped: only when a socket is not unix.
    for proto in ("tcp", "tcp6", "udp", "udp6") if inet else ():
        try:
            rows = Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9:
                found[cols[9]] = f"{proto} {cols[1]}"  # local address: kept across a restore
    return found


def _fds(pid: int) -> dict[int, Fd]:
    fds: dict[int, Fd] = {}
    sockets: dict[str, str] | None = None
    inet_read = False
    # Pipes and unbound sockets have no name but their inode, which a restore changes: name
    # them by first appearance instead, so two fds on one pipe still show as sharing it.
    aliases: dict[str, str] = {}
    base = Path(f"/proc/{pid}/fd")
    for entry in sorted(os.listdir(base), key=int):
        fd = int(entry)
        try:
            link = os.readlink(base / entry)
            info = _fdinfo(pid, fd)
        except FileNotFoundError:
            continue  # closed while we looked (the process runs)
        flags = info.get("flags", "")
        if link.startswith("socket:["):
            inode = link[len("socket:["):-1]
            if sockets is None:
                sockets = _sockets(pid)
            if inode not in sockets and not inet_read:
                sockets, inet_read = _sockets(pid, inet=True), True
            desc = sockets.get(inode, "socket (not unix or inet)")
            if desc.endswith("(unbound)") or desc.startswith("socket "):
                desc = f"{desc} #{aliases.setdefault(link, str(len(aliases) + 1))}"
            fds[fd] = Fd("socket", desc, flags)
        elif link.startswith("pipe:["):
            fds[fd] = Fd("pipe", f"pipe#{aliases.setdefault(link, str(len(aliases) + 1))}", flags)
        elif link.startswith("anon_inode:"):
            fds[fd] = Fd("anon", link, flags)
        elif link.startswith("/"):
            pos = int(info["pos"]) if "pos" in info and _regular(base / entry) else None
            fds[fd] = Fd("file", link, flags, pos)
        else:
            fds[fd] = Fd("other", link, flags)
    return fds


def _regular(path: Path) -> bool:
    try:
        return os.path.isfile(path)  # follows the fd link to the open file
    except OSError:
        return False


def _fdinfo(pid: int, fd: int) -> dict[str, str]:
    info: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("pos", "flags"):
            info[key] = value.strip()
    return info


def _maps(pid: int) -> dict[tuple[str, str], int]:
    merged: dict[tuple[str, str], int] = {}
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        cols = line.split(maxsplit=5)
        start, _, end = cols[0].partition("-")
        path = cols[5].strip() if len(cols) > 5 else "[anon]"
        if path in IGNORED_MAPPINGS:
            continue
        key = (path, cols[1])
        merged[key] = merged.get(key, 0) + int(end, 16) - int(start, 16)
    return merged


def describe(differences: Iterable[Difference]) -> str:
    """Differences for a reason line, one field after the other."""
    return "; ".join(str(d) for d in differences)


class Inspection:
    """The before and after looks of one migration, as Migration hooks.

    Roles the plan does not freeze run on while being looked at and after their restore, so
    their state letter and file offsets change by themselves: for those only what a running
    process keeps is compared."""

    def __init__(self, frozen: Iterable[str]) -> None:
        self.frozen = set(frozen)
        self.before: dict[str, dict[int, Fingerprint]] = {}
        self.after: dict[str, dict[int, Fingerprint]] = {}
        self.problems: list[Difference] = []

    def before_dump(self, role: str, workload: Any) -> None:
        self._look(self.before, role, workload.pid)

    def after_restore(self, role: str, workload: Any) -> None:
        if role in self.frozen:
            # CRIU hands a task dumped stopped back with SIGSTOP pending: for a moment after
            # the restore returns it is runnable (R), on its way to the stop, before any of
            # its own code runs. Compare the settled state.
            # Still not stopped after that: the state difference will say so.
            poll(lambda: tree_stopped(workload.pid), timeout=1.0, interval=0.0002)
        self._look(self.after, role, workload.pid)

    def _look(self, into: dict[str, dict[int, Fingerprint]], role: str, pid: int) -> None:
        try:
            tree = take_tree(pid)
        except WorkloadError as exc:
            # Not the migration's failure to report here: the dump or the progress check
            # will say the process is gone. Keep why the look failed as evidence.
            self.problems.append(Difference(role, "fingerprint", "", str(exc)))
            return
        if role not in self.frozen:
            tree = {pid: fp.running() for pid, fp in tree.items()}
        into[role] = tree

    def differences(self) -> list[Difference]:
        """What differs, for every role looked at both before its dump and after its restore."""
        out = list(self.problems)
        for role, before in self.before.items():
            if role in self.after:
                out.extend(diff_trees(before, self.after[role], role))
        return out
