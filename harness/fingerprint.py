"""Visible state of a workload's processes, taken before a dump and after a restore (compared
in harness.difference).

What a process can see of itself must come back as it was: its pid, command line, working
directory, open files (by fd number), memory layout, limits and state. What the kernel renames
on any restore by nature (socket and pipe inode numbers) is described instead of copied: a
socket by its type and bound path, a pipe by which fds share it.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

from harness.errors import WorkloadError
from harness.proctree import own_pid, tree_pids

__all__ = ["Fd", "Fingerprint", "take", "take_tree"]

# /proc/net/unix "Type" column (include/linux/net.h).
_UNIX_TYPES = {"0001": "stream", "0002": "dgram", "0005": "seqpacket"}
# Mappings left out of the comparison. None, measured on this machine: with the same kernel on
# both sides CRIU puts [vdso], [vvar] and [vvar_vclock] back where they were, with their sizes,
# and the maps are compared merged by path and permissions, never by address. A restore on
# another kernel would change the vDSO's size legitimately (6.13 split [vvar] in two): name
# those mappings here for such a migration.
IGNORED_MAPPINGS: tuple[str, ...] = ()
# Mappings the kernel names differently after any restore, for the same memory shared the same
# way. A shared anonymous mapping (mmap MAP_SHARED|MAP_ANONYMOUS) is backed by an unlinked
# shmem file the kernel calls "/dev/zero (deleted)"; no system call can make one at a given
# address in another process, so CRIU restores it from a memfd of that name, which the kernel
# shows as "/memfd:/dev/zero (deleted)". Same pages, same sharing, same permissions.
SAME_MAPPING = {"/memfd:/dev/zero (deleted)": "/dev/zero (deleted)"}
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

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid, "cmdline": list(self.cmdline), "cwd": self.cwd, "state": self.state,
            "fds": {str(n): [fd.kind, fd.target, fd.flags, fd.pos] for n, fd in self.fds.items()},
            "maps": [[path, perms, size] for (path, perms), size in self.maps.items()],
            "rlimits": {name: list(limits) for name, limits in self.rlimits.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fingerprint:
        """A look taken on another host (harness.departure); KeyError, TypeError or
        ValueError if data is not one."""
        return cls(
            int(data["pid"]), tuple(str(a) for a in data["cmdline"]), str(data["cwd"]),
            str(data["state"]),
            {int(n): Fd(str(k), str(t), str(f), None if p is None else int(p))
             for n, (k, t, f, p) in data["fds"].items()},
            {(str(path), str(perms)): int(size) for path, perms, size in data["maps"]},
            {str(name): (int(soft), int(hard)) for name, (soft, hard) in data["rlimits"].items()},
        )

    def running(self) -> Fingerprint:
        """Without what a running process changes by itself: its state and file offsets."""
        fds = {n: replace(fd, pos=None) for n, fd in self.fds.items()}
        return replace(self, state="", fds=fds)


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


def take_tree(pid: int) -> dict[int, Fingerprint]:
    """Fingerprints of pid and all its descendants (CRIU dumps and restores the whole tree),
    by the pid each sees itself as."""
    looks = (take(p) for p in sorted(tree_pids(pid)))
    return {fp.pid: fp for fp in looks}


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
    # each by the lowest fd that holds it ("@fd3"), so two fds on one pipe still show as
    # sharing it. Not by a running count: one socket losing its name would renumber every
    # later one, and one change would read as several.
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
                desc = f"{desc} @fd{aliases.setdefault(link, str(fd))}"
            fds[fd] = Fd("socket", desc, flags)
        elif link.startswith("pipe:["):
            fds[fd] = Fd("pipe", f"pipe@fd{aliases.setdefault(link, str(fd))}", flags)
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
        path = SAME_MAPPING.get(path, path)
        key = (path, cols[1])
        merged[key] = merged.get(key, 0) + int(end, 16) - int(start, 16)
    return merged
