"""Will ``criu dump`` of this tree be refused, and why? A prediction from /proc and sock_diag,
before any dump (CRIU has no way to ask; a trial dump is its only check).

Each rule is one refusal (or loss) the atlas has shown, with the CRIU log line it leads to
(the *signature*) and the option that would help. A tree is predicted to dump, to be refused
(with the first refusal CRIU would meet, in CRIU's own order: the process tree, then each
task's memory, then its files by fd), or "no opinion" when it holds something no rule knows.
Warnings name what a dump takes along but a restore will not give back.
"""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from harness.criu.options import CriuOptions
from harness.criu.version import matches
from harness.errors import UsageError
from harness.procfs import Fd, Task, holders, read_task, tree
from harness.sockdiag import Sockets, read_sockets

__all__ = ["DumpOptions", "Finding", "Prediction", "Severity", "Verdict", "overall", "predict", "report"]

DEFAULT_GHOST_LIMIT = 1 << 20
# anon_inode files CRIU dumps (criu/files.c and friends).
KNOWN_ANON = ("[eventfd]", "[eventpoll]", "[signalfd]", "[timerfd]", "inotify", "[fanotify]",
              "[pidfd]")


class Severity(StrEnum):
    REFUSAL = "refusal"  # criu dump will fail
    WARNING = "warning"  # it dumps, and something does not come back (or comes back twice)
    UNKNOWN = "unknown"  # no rule knows what CRIU does with it


class Verdict(StrEnum):
    DUMPS = "dumps"
    REFUSED = "refused"
    NO_OPINION = "no opinion"


@dataclass(frozen=True)
class DumpOptions:
    """The dump options that change CRIU's verdict, and the CRIU version."""

    ext_unix_sk: bool = False
    tcp_established: bool = False
    shell_job: bool = False
    link_remap: bool = False
    network_lock: str | None = None  # None: CRIU's default, iptables
    criu_version: str | None = None

    @classmethod
    def of(cls, opts: CriuOptions, criu_version: str | None) -> DumpOptions:
        return cls(opts.ext_unix_sk, opts.tcp_established, opts.shell_job,
                   "--link-remap" in opts.extra_args, opts.network_lock, criu_version)

    def flags(self) -> list[str]:
        flags = [f"--{name.replace('_', '-')}" for name in
                 ("ext_unix_sk", "tcp_established", "shell_job", "link_remap") if getattr(self, name)]
        return flags + (["--network-lock", self.network_lock] if self.network_lock else [])


@dataclass(frozen=True)
class Finding:
    severity: Severity
    pid: int
    process: str
    fd: int | None
    what: str  # the object and why it matters
    signature: str | None = None  # the CRIU log line a refusal leads to (a part of it)
    helps: str | None = None  # the option (or change) that would help

    def line(self) -> str:
        where = f"pid {self.pid} ({self.process})" + (f" fd {self.fd}" if self.fd is not None else "")
        text = f"{self.severity}: {where}: {self.what}"
        if self.signature:
            text += f"; criu: {self.signature!r}"
        if self.helps:
            text += f"; helps: {self.helps}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"severity": str(self.severity), "pid": self.pid, "process": self.process,
                "fd": self.fd, "what": self.what, "signature": self.signature, "helps": self.helps}


@dataclass
class Prediction:
    """What ``criu dump -t ROOT`` would do, with everything found on the way."""

    root: int
    process: str
    role: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        kinds = {f.severity for f in self.findings}
        if Severity.REFUSAL in kinds:
            return Verdict.REFUSED
        return Verdict.NO_OPINION if Severity.UNKNOWN in kinds else Verdict.DUMPS

    @property
    def refusal(self) -> Finding | None:
        return next((f for f in self.findings if f.severity is Severity.REFUSAL), None)

    def to_json(self) -> dict[str, Any]:
        refusal = self.refusal
        return {"root": self.root, "process": self.process, "role": self.role,
                "verdict": str(self.verdict), "signature": refusal.signature if refusal else None,
                "findings": [f.to_json() for f in self.findings]}


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        parts = [int(p) for p in platform.release().split("-")[0].split(".")[:2]]
    except ValueError:
        return False
    return tuple(parts) >= (major, minor)


@dataclass
class _Look:
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


def _session(look: _Look) -> Iterator[Finding]:
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


def _memory(look: _Look, task: Task) -> Iterator[Finding]:
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


def _unix(look: _Look, task: Task, fd: Fd) -> Iterator[Finding]:
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


def _inet(look: _Look, task: Task, fd: Fd) -> Iterator[Finding]:
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


def _files(look: _Look, task: Task) -> Iterator[Finding]:
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


def _look(look: _Look) -> list[Finding]:
    found = list(_session(look))
    for task in look.tasks:
        found += _memory(look, task)
    for task in look.tasks:
        found += _files(look, task)
    return found


def _task(pid: int) -> Task | None:
    try:
        return read_task(pid)
    except OSError:  # gone meanwhile (a child that exited): CRIU will not see it either
        return None


def overall(predictions: Sequence[Prediction]) -> tuple[Verdict, Prediction | None]:
    """The verdict on dumping the trees in order: the first refused (or unforeseeable) one
    decides, as the first failing dump stops a migration."""
    for p in predictions:
        if p.verdict is not Verdict.DUMPS:
            return p.verdict, p
    return Verdict.DUMPS, None


def report(predictions: Sequence[Prediction], options: DumpOptions) -> list[str]:
    """The prediction for people: one block per tree, then the verdict."""
    flags = " ".join(options.flags()) or "(none)"
    lines = [f"criu {options.criu_version or 'unknown'} | dump options: {flags}"]
    for p in predictions:
        role = f" [{p.role}]" if p.role else ""
        lines.append(f"pid {p.root} ({p.process}){role}: {p.verdict}")
        lines += [f"  {f.line()}" for f in p.findings]
    verdict, first = overall(predictions)
    if first is not None and first.refusal is not None:
        lines.append(f"verdict: {verdict}: criu dump of pid {first.root} would fail with "
                     f"{first.refusal.signature!r}")
    else:
        lines.append(f"verdict: {verdict}")
    return lines


def predict(
    roots: Sequence[int],
    options: DumpOptions,
    roles: Sequence[str | None] | None = None,
    sequential: bool = True,
) -> list[Prediction]:
    """A prediction for each tree. Sequential: the trees are dumped one after the other in
    this order (as the harness's plans do), each gone once dumped."""
    sockets = read_sockets()
    owners = holders()
    gone: set[int] = set()
    predictions = []
    for i, root in enumerate(roots):
        tasks = [t for pid in tree(root) if (t := _task(pid)) is not None]
        if not tasks or tasks[0].pid != root:
            raise UsageError(f"no such process: {root}")
        look = _Look(root, tasks, sockets, owners, set(gone), options)
        role = roles[i] if roles is not None else None
        predictions.append(Prediction(root, tasks[0].name, role, _look(look)))
        if sequential:
            gone |= look.pids
    return predictions
