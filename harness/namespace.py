"""Starting a workload as the init of namespaces of its own, the way CRIU's own test suite
runs its ``ns`` flavor.

A small launcher (``python -m harness.namespace SPEC``) unshares the namespaces and forks: the
child is pid 1 of the new PID namespace, starts a session of its own inside it, builds its
mount namespace (below) and executes the workload; the launcher writes the child's pid (as
the harness sees it) on a pipe and exits, so the child is reparented to the harness, a child
subreaper. Nothing of the launcher stays behind to write into the workload's output files
(CRIU refuses a restore whose files changed size after the dump), and nothing in the tree
holds a parent-death signal (CRIU would restore it; see harness.keeper).

The mount namespace holds exactly five mounts, so CRIU can be told about each one:

- ``/``: the host's root filesystem (a bind of ``/``, without the mounts under it): CRIU
  restores it onto ``--root /``;
- ``/proc``: a new proc for the new PID namespace (CRIU mounts a new one);
- ``/dev``: a bind of the host's ``/dev`` (external: CRIU binds it again), with a private
  tmpfs on ``/dev/shm`` (CRIU saves and restores its contents);
- ``/tmp``: a directory of the run, shared by the run's workloads and no one else's, so
  programs with fixed paths under /tmp run side by side (external);
- the run directory, at its own path (external): the harness reads the workloads' sockets,
  logs and event files there.

Standard input, output and error are opened again inside the new mount namespace: a file
opened before it lives on a mount CRIU cannot find there (``Can't lookup mount=...``).
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["MOUNTS", "Namespaces", "launch"]

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
SYS_PIVOT_ROOT = 155  # x86_64
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1

# The mounts a workload's mount namespace holds besides / and /proc, by the key CRIU's
# --external mnt[KEY] names them with: where they are inside (None: the run directory, at its
# own path), as the launcher builds them.
MOUNTS = {"dev": "/dev", "tmp": "/tmp", "run": None}
# How long the launcher may take to say the workload's pid.
LAUNCH_TIMEOUT_S = 30.0


def hidden_by_tmp() -> tuple[str, ...]:
    """The harness's own files that a private /tmp would hide (a checkout or a virtual
    environment under /tmp): bound again at their own paths, so the workloads, which run
    the harness's Python, still find it."""
    candidates = {Path(__file__).resolve().parents[1], Path(sys.prefix).resolve(),
                  Path(sys.base_prefix).resolve()}
    under = sorted(p for p in candidates if Path("/tmp") in p.parents)
    return tuple(str(p) for p in under if not any(q in p.parents for q in under))


@dataclass(frozen=True)
class Namespaces:
    """Which namespaces a workload gets: always a PID namespace (it is their init, in a
    session of its own), and optionally a mount namespace (``tmp``: the host directory
    mounted on its /tmp; ``run_dir``: mounted at its own path) and a network namespace."""

    mount: bool = True
    net: bool = False
    run_dir: str = ""
    tmp: str = ""
    # Host directories bound at their own paths (see hidden_by_tmp), keyed host0, host1, ...
    hosts: tuple[str, ...] = field(default_factory=hidden_by_tmp)
    # For a program that daemonizes (its launcher exits, the daemon lives on): pid 1 is an
    # init of the harness's (harness.nsinit) that runs the program as its child, reaps what
    # is orphaned in the namespace and notes each exit in ``exits``, and exits with the
    # status of the process ``pidfile`` names.
    init: bool = False
    exits: str = ""
    pidfile: str = ""

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Namespaces:
        """From to_json's dict (another host's harness sends it with the workload)."""
        hosts = data.get("hosts", ())
        if not isinstance(hosts, (list, tuple)):
            raise ValueError(f"namespaces: hosts {hosts!r} is not a list")
        return cls(mount=bool(data.get("mount", True)), net=bool(data.get("net", False)),
                   run_dir=str(data.get("run_dir", "")), tmp=str(data.get("tmp", "")),
                   hosts=tuple(str(h) for h in hosts), init=bool(data.get("init", False)),
                   exits=str(data.get("exits", "")), pidfile=str(data.get("pidfile", "")))

    def start(
        self,
        argv: Sequence[str],
        stdout: Path,
        stderr: Path,
        cwd: Path,
        env: Mapping[str, str],
        preexec: Callable[[], None] | None = None,
    ) -> int:
        """Start argv as the init of new namespaces; return its pid (as seen from here).
        The launcher is reaped before this returns; the workload is the caller's (a child
        subreaper's) from then on."""
        from harness.errors import (
            WorkloadError,  # the launcher imports this module: keep it light
        )

        read, write = os.pipe()
        spec = {
            **asdict(self),
            "argv": list(argv),
            "stdout": str(stdout),
            "stderr": str(stderr),
            "cwd": str(cwd),
            "report_fd": write,
        }
        try:
            with stdout.open("ab") as out, stderr.open("ab") as err:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "harness.namespace", json.dumps(spec)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    cwd=cwd,
                    env=dict(env),
                    start_new_session=True,
                    close_fds=True,
                    pass_fds=[write],
                    preexec_fn=preexec,
                )
        except (OSError, subprocess.SubprocessError) as exc:
            os.close(read)
            raise WorkloadError(f"cannot start {argv[0]!r} in namespaces: {exc}") from exc
        finally:
            os.close(write)
        with os.fdopen(read) as report:
            lines = report.read().splitlines()  # EOF: launcher gone, workload exec'd (or not)
        try:
            proc.wait(timeout=LAUNCH_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        pid = next((int(line.split()[1]) for line in lines if line.startswith("pid ")), 0)
        errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
        if errors or not pid:
            why = errors[0] if errors else f"the launcher exited with status {proc.returncode}"
            raise WorkloadError(f"cannot start {argv[0]!r} in namespaces: {why}")
        return pid


# --- the launcher (runs in the new process, before the workload) ------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    def b(text: str | None) -> bytes | None:
        return text.encode() if text is not None else None

    _check(_libc.mount(b(source), b(target), b(fstype), flags, b(data)), f"mount {target}")


def _build_mounts(spec: dict[str, object]) -> None:
    """The mount namespace of the module docstring, then pivot into it."""
    run_dir, tmp = str(spec["run_dir"]), str(spec["tmp"])
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing of ours propagates back
    root = os.path.join(run_dir, ".ns-root")  # a mount point only: it stays empty on the host
    os.makedirs(root, exist_ok=True)
    _mount("/", root, None, MS_BIND)
    _mount("proc", f"{root}/proc", "proc", 0)
    _mount("/dev", f"{root}/dev", None, MS_BIND)
    _mount("tmpfs", f"{root}/dev/shm", "tmpfs", 0, "mode=1777")
    _mount(tmp, f"{root}/tmp", None, MS_BIND)
    os.makedirs(f"{root}{run_dir}", exist_ok=True)
    _mount(run_dir, f"{root}{run_dir}", None, MS_BIND)
    for host in spec.get("hosts", ()):  # type: ignore[attr-defined]
        os.makedirs(f"{root}{host}", exist_ok=True)
        _mount(str(host), f"{root}{host}", None, MS_BIND)
    os.chdir(root)
    # pivot_root(".", "."): the old root ends up on top of the new one, and is detached.
    _check(_libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", MNT_DETACH), "umount the old root")
    os.chdir("/")


def _reopen_stdio(spec: dict[str, object]) -> None:
    for fd, path, flags in ((0, "/dev/null", os.O_RDONLY),
                            (1, str(spec["stdout"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT),
                            (2, str(spec["stderr"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT)):
        new = os.open(path, flags, 0o644)
        os.dup2(new, fd)
        os.close(new)


def _loopback_up() -> None:
    """A new network namespace's loopback starts down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sk:
        ifreq = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sk, SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(sk, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def launch(spec: dict[str, object]) -> int:
    report = int(str(spec["report_fd"]))
    os.set_inheritable(report, False)  # closed by the exec: EOF tells the harness it happened
    flags = CLONE_NEWPID | (CLONE_NEWNS if spec["mount"] else 0) | (
        CLONE_NEWNET if spec["net"] else 0)
    try:
        _check(_libc.unshare(flags), "unshare")
        pid = os.fork()
    except OSError as exc:
        os.write(report, f"error: {exc}\n".encode())
        return 1
    if pid:
        os.write(report, f"pid {pid}\n".encode())
        return 0
    try:
        os.setsid()  # CRIU refuses a session leader outside the task's PID namespace
        if spec["mount"]:
            _build_mounts(spec)
            _reopen_stdio(spec)
        if spec["net"]:
            _loopback_up()
        os.chdir(str(spec["cwd"]))
        argv = [str(a) for a in spec["argv"]]  # type: ignore[attr-defined]
        if spec.get("init") and (child := os.fork()):
            os.close(report)  # the child's exec closes the last copy: EOF for the harness
            # Executed again, so that the init's own files (its interpreter, libraries) are
            # opened through this namespace's mounts: CRIU cannot find the host's mount of a
            # file mapped before the pivot ("Can't lookup mount").
            os.execv(sys.executable, [sys.executable, "-m", "harness.nsinit", str(child),
                                      str(spec["exits"]), str(spec["pidfile"])])
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(report, f"error: {exc}\n".encode())
    os._exit(127)


if __name__ == "__main__":
    sys.exit(launch(json.loads(sys.argv[1])))
