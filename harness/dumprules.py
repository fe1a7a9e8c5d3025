"""The rules of ``inspect``: each rule a refusal (or a loss) CRIU was seen
to make, looked for in one tree the way CRIU meets it: the process tree, then each task's
memory, then its files by fd. harness.migratability runs them over the trees to dump."""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

from harness.criu.version import matches
from harness.prediction import (
    DEFAULT_GHOST_LIMIT,
    KNOWN_ANON,
    DumpOptions,
    Finding,
    Severity,
)
from harness.procfs import Fd, Task
from harness.sockdiag import Sockets

__all__ = ["Look", "look_at"]

def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        parts = [int(p) for p in platform.release().split("-")[0].split(".")[:2]]
    except ValueError:
        return False
    return tuple(parts) >= (major, minor)


@dataclass
class Look:
    """What one tree's rules look at: its tasks, and the machine around it."""

    root: int
    tasks: list[Task]
    sockets: Sockets
    owners: dict[str, set[int]]
    gone: set[int]  # processes dumped (and so gone) before this tree is
    options: DumpOptions

    def __post_init__(self) -> None:
        self.pids = {t.pid for t in self.tasks}

    def outside(self, key: str) -> set[int]:
        """The live processes outside this tree that hold the object too."""
        return self.owners.get(key, set()) - self.pids - self.gone

    def inside(self, key: str) -> bool:
        return bool(self.owners.get(key, set()) & self.pids)


def _session(look: Look) -> Iterator[Finding]:
    root = look.tasks[0]
    if root.sid != root.pid and not look.options.shell_job:
        yield Finding(Severity.REFUSAL, root.pid, root.name, None,
                      f"not a session leader (session {root.sid} is led outside the tree)",
                      "is not a session leader", "--shell-job (or start it with setsid)")
    for task in look.tasks:
        if task.tty_nr and not look.options.shell_job:
            yield Finding(Severity.UNKNOWN, task.pid, task.name, None,
                          "has a controlling terminal: what CRIU does with it is not predicted here",
                          None, "--shell-job if the terminal is the caller's")


def _memory(look: Look, task: Task) -> Iterator[Finding]:
    own_ipc = os.readlink("/proc/self/ns/ipc")
    seen: set[str] = set()
    for m in task.maps:
        if m.sysv and task.ipc_ns == own_ipc and "sysv" not in seen:
            seen.add("sysv")
            yield Finding(Severity.REFUSAL, task.pid, task.name, None,
                          f"SysV shared memory attached at {m.start} in the machine's own IPC "
                          "namespace: CRIU saves SysV IPC only with an IPC namespace it dumps",
                          "doesn't live in IPC ns",
                          "nothing from the command line: an IPC namespace of its own for the "
                          "tree (and for whatever shares the segment, so in the same tree)")
        elif (m.deleted and not m.sysv and (m.nlink or 0) > 0 and m.path not in seen
              and not look.options.link_remap):
            seen.add(m.path)
            yield Finding(Severity.REFUSAL, task.pid, task.name, None,
                          f"maps {m.path}: a file still linked elsewhere under another name "
                          "(sem_open() makes its semaphores so)",
                          "Use link-remap option", "--link-remap")


def _unix(look: Look, task: Task, fd: Fd) -> Iterator[Finding]:
    s = look.sockets.unix[fd.inode]
    opts = look.options
    if s.peer:
        key = f"socket:{s.peer}"
        peer = look.sockets.unix.get(s.peer)
        peer_name = peer.name if peer and peer.name else f"inode {s.peer}"
        outside = look.outside(key)
        if not look.inside(key):
            held = ", ".join(f"pid {p}" for p in sorted(outside)) or "nobody left"
            what = f"{s.describe()} connected to {peer_name}, held by {held} outside the tree"
            if s.kind in ("stream", "seqpacket"):
                if not outside:
                    yield Finding(Severity.UNKNOWN, task.pid, task.name, fd.fd,
                                  f"{what}: its peer is gone by the dump; not predicted")
                elif opts.ext_unix_sk:
                    yield Finding(Severity.REFUSAL, task.pid, task.name, fd.fd, what,
                                  "Can't dump half of stream unix connection",
                                  "nothing from the command line: both ends in one tree (a "
                                  "common parent), as stream-tree")
                else:
                    yield Finding(Severity.REFUSAL, task.pid, task.name, fd.fd, what,
                                  "External socket is used",
                                  "--ext-unix-sk does not: CRIU then refuses half a "
                                  f"{s.kind} connection; both ends in one tree do")
            elif not outside:
                yield Finding(Severity.WARNING, task.pid, task.name, fd.fd,
                              f"{what}: its peer is dumped (and gone) first, so CRIU saves it "
                              "unconnected and every send() after the restore fails with ENOTCONN")
            elif not opts.ext_unix_sk:
                yield Finding(Severity.REFUSAL, task.pid, task.name, fd.fd, what,
                              "External socket is used", "--ext-unix-sk")
            else:
                yield Finding(Severity.WARNING, task.pid, task.name, fd.fd,
                              f"{what}: with --ext-unix-sk CRIU connects it again by name at "
                              "restore, so the peer must be there then")
    if s.kind == "dgram" and s.recv_q:
        yield Finding(Severity.WARNING, task.pid, task.name, fd.fd,
                      f"{s.describe()} has {s.recv_q} byte(s) queued: CRIU restores queued "
                      "datagrams without their senders' addresses (unanswerable)")
    elif s.recv_q:
        yield Finding(Severity.WARNING, task.pid, task.name, fd.fd,
                      f"{s.describe()} has {s.recv_q} byte(s) queued: if they carry file "
                      "descriptors (SCM_RIGHTS), the restore fails or drops them (scm-rights)")


def _inet(look: Look, task: Task, fd: Fd) -> Iterator[Finding]:
    s = look.sockets.inet[fd.inode]
    opts = look.options
    if opts.criu_version and matches("<4.2", opts.criu_version) and _kernel_at_least(6, 16):
        yield Finding(Severity.REFUSAL, task.pid, task.name, fd.fd,
                      f"{s.describe()}: CRIU {opts.criu_version} asks every socket for "
                      "SO_PASSCRED, which Linux 6.16 and later refuse on inet sockets",
                      "Can't get 1:16 opt: Operation not supported", "CRIU 4.2 or later")
        return
    if s.proto == "tcp" and s.state not in ("LISTEN", "CLOSE", "UNCONN"):
        if not opts.tcp_established:
            yield Finding(Severity.REFUSAL, task.pid, task.name, fd.fd, s.describe(),
                          "Connected TCP socket, consider using --tcp-established option",
                          "--tcp-established (and a network lock that works here)")
        elif opts.network_lock in (None, "iptables") and not shutil.which("iptables-restore"):
            yield Finding(Severity.REFUSAL, task.pid, task.name, fd.fd,
                          f"{s.describe()}: the default network lock runs iptables-restore, "
                          "which is not installed", "exited, status=127",
                          "--network-lock nftables")
    if s.proto == "udp":
        yield Finding(Severity.WARNING, task.pid, task.name, fd.fd,
                      f"{s.describe()}: CRIU does not save a UDP socket's receive queue; a "
                      "datagram waiting at the dump is lost"
                      + (f" ({s.recv_q} byte(s) wait now)" if s.recv_q else ""))


def _files(look: Look, task: Task) -> Iterator[Finding]:
    for fd in task.fds:
        if fd.kind == "socket":
            if fd.inode in look.sockets.unix:
                yield from _unix(look, task, fd)
            elif fd.inode in look.sockets.inet:
                yield from _inet(look, task, fd)
            elif fd.inode not in look.sockets.netlink:
                yield Finding(Severity.UNKNOWN, task.pid, task.name, fd.fd,
                              f"{fd.target}: a socket neither unix, inet nor netlink")
            continue
        if fd.kind == "pipe":
            if outside := look.outside(fd.key):
                yield Finding(Severity.WARNING, task.pid, task.name, fd.fd,
                              f"{fd.target} shared with pid {', '.join(map(str, sorted(outside)))} "
                              "outside the tree: CRIU restores it as a new pipe holding only this "
                              "tree's ends, so the two sides no longer meet (EPIPE, EOF)")
            continue
        if fd.kind == "anon":
            if not fd.target.removeprefix("anon_inode:").startswith(KNOWN_ANON):
                yield Finding(Severity.UNKNOWN, task.pid, task.name, fd.fd,
                              f"{fd.target}: a kind of file no rule here knows")
            continue
        if fd.mnt_id is not None and task.mount_ids and fd.mnt_id not in task.mount_ids:
            yield Finding(Severity.REFUSAL, task.pid, task.name, fd.fd,
                          f"{fd.target}: on a mount (id {fd.mnt_id}) the process cannot see, "
                          "such as the internal one of POSIX message queues",
                          "Can't lookup mount=", "nothing from the command line")
            continue
        if fd.kind == "fifo" and (outside := look.outside(fd.key)):
            yield Finding(Severity.WARNING, task.pid, task.name, fd.fd,
                          f"FIFO {fd.path} is open outside the tree too (pid "
                          f"{', '.join(map(str, sorted(outside)))}): each tree's dump saves its "
                          "contents and each restore writes them back, so data waiting at the "
                          "dump may arrive twice")
        if fd.deleted and (fd.nlink or 0) > 0 and not look.options.link_remap:
            yield Finding(Severity.REFUSAL, task.pid, task.name, fd.fd,
                          f"{fd.target}: a file still linked elsewhere under another name",
                          "Use link-remap option", "--link-remap")
        elif fd.deleted and fd.kind == "file" and (fd.size or 0) > DEFAULT_GHOST_LIMIT:
            yield Finding(Severity.UNKNOWN, task.pid, task.name, fd.fd,
                          f"{fd.target}: a deleted file of {fd.size} bytes, above CRIU's default "
                          "--ghost-limit: not predicted")
        if fd.kind == "chr" and fd.path.startswith(("/dev/pts/", "/dev/tty")) and not look.options.shell_job:
            yield Finding(Severity.UNKNOWN, task.pid, task.name, fd.fd,
                          f"{fd.path}: a terminal; not predicted", None, "--shell-job if it is the caller's")


def look_at(look: Look) -> list[Finding]:
    found = list(_session(look))
    for task in look.tasks:
        found += _memory(look, task)
    for task in look.tasks:
        found += _files(look, task)
    return found


