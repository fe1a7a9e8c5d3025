"""A second host on one machine: two network namespaces joined by a veth pair.

The source side and the destination side each get a network namespace of their own, held
open by a small process in the run's cgroup (so whatever ends the run, the keeper included,
ends them, and the kernel removes the namespaces and the veth pair with them), and one end of
a veth pair with an address on a /30 of its own. No address is ever set in the harness's own
network namespace: the pair lives entirely inside the two namespaces made here.

Sockets are made inside either namespace (``Host.connect``, ``Host.listen``) from a thread that
joins it for that moment only, and CRIU running elsewhere takes them over as ``--ps-socket``:
the pages of a dump cross the veth pair. A real second machine (the Vagrantfile's two-machine
mode) is the same :class:`Host` with no namespace: an address, reached from this one.
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from harness.cgroup import RunCgroup
from harness.errors import WorkloadError
from harness.waiting import wait_for

__all__ = ["SUBNET", "Host", "VethPair", "in_netns"]

CLONE_NEWNET = 0x40000000
# The pair's addresses: inside the two namespaces only, so any free private /30 will do; the
# same one serves every run, each in namespaces of its own.
SUBNET = ("10.231.0.1", "10.231.0.2", 30)
T = TypeVar("T")


@dataclass(frozen=True)
class Host:
    """One side of a migration: its address and, on this machine, its network namespace
    (a /proc/PID/ns/net path; None for the namespace the harness runs in)."""

    name: str
    address: str
    netns: str | None = None

    def connect(self, address: str, port: int, timeout: float = 10.0) -> socket.socket:
        """A TCP connection from this host to address:port."""

        def make() -> socket.socket:
            sk = socket.create_connection((address, port), timeout=timeout)
            sk.settimeout(None)
            return sk

        return in_netns(self.netns, make)

    def listen(self, port: int) -> socket.socket:
        """A TCP socket listening on this host's address."""

        def make() -> socket.socket:
            sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sk.bind((self.address, port))
            sk.listen(1)
            return sk

        return in_netns(self.netns, make)

    def enter(self) -> Callable[[], None] | None:
        """A ``preexec_fn`` part that moves a new child into this host's network namespace."""
        if self.netns is None:
            return None
        path = self.netns

        def join() -> None:
            _setns(path)

        return join


def _setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def in_netns(netns: str | None, make: Callable[[], T]) -> T:
    """make() run in a network namespace (None: here). A thread joins the namespace and ends:
    the harness's own threads never change namespace; a socket keeps the one it was made in."""
    if netns is None:
        return make()
    out: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            _setns(netns)
            out.append(make())
        except BaseException as exc:  # noqa: BLE001 (raised again in the caller's thread)
            failed.append(exc)

    thread = threading.Thread(target=run, name=f"netns {netns}")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return out[0]


@dataclass
class VethPair:
    """Two network namespaces (source, destination) joined by a veth pair; a context manager
    that removes them on exit (and the run's cgroup does, if the harness dies first)."""

    cgroup: RunCgroup | None = None
    source: Host = field(init=False)
    destination: Host = field(init=False)
    _holders: list[subprocess.Popen[bytes]] = field(default_factory=list, init=False)

    def __enter__(self) -> VethPair:
        try:
            src, dst = self._hold("src"), self._hold("dst")
            src_addr, dst_addr, bits = SUBNET
            tag = f"{os.getpid() % 100000}"
            src_if, dst_if = f"chs{tag}", f"chd{tag}"
            _ip(None, "link", "add", src_if, "netns", str(src), "type", "veth",
                "peer", "name", dst_if, "netns", str(dst))
            for pid, ifname, addr in ((src, src_if, src_addr), (dst, dst_if, dst_addr)):
                ns = f"/proc/{pid}/ns/net"
                _ip(ns, "addr", "add", f"{addr}/{bits}", "dev", ifname)
                _ip(ns, "link", "set", ifname, "up")
                _ip(ns, "link", "set", "lo", "up")
            self.source = Host("source", src_addr, f"/proc/{src}/ns/net")
            self.destination = Host("destination", dst_addr, f"/proc/{dst}/ns/net")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _hold(self, name: str) -> int:
        """A process that holds a new network namespace open, in the run's cgroup."""
        group = self.cgroup.child(f"netns-{name}") if self.cgroup is not None else None
        try:
            proc = subprocess.Popen(
                ["unshare", "--net", "sleep", "infinity"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                start_new_session=True, close_fds=True,
                preexec_fn=group.enter() if group is not None else None,
            )
        except OSError as exc:
            raise WorkloadError(f"cannot make the {name} network namespace: {exc}") from exc
        self._holders.append(proc)
        own = os.readlink("/proc/self/ns/net")

        def made() -> str:
            """"up", "exited", or "" while unshare has not exec'd sleep in the new namespace."""
            if proc.poll() is not None:
                return "exited"
            try:
                new = os.readlink(f"/proc/{proc.pid}/ns/net") != own
                return "up" if new and Path(f"/proc/{proc.pid}/comm").read_text() == "sleep\n" else ""
            except OSError:
                return ""

        state = wait_for(made, timeout=5.0, interval=0.001, error=lambda _: WorkloadError(
            f"the {name} network namespace did not come up within 5 s"))
        if state == "exited":
            assert proc.stderr is not None
            err = proc.stderr.read().decode(errors="replace").strip()
            raise WorkloadError(f"cannot make the {name} network namespace: {err}")
        return proc.pid

    def close(self) -> None:
        for proc in self._holders:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
        self._holders.clear()


def _ip(netns: str | None, *args: str) -> None:
    argv = ["ip", *args] if netns is None else ["nsenter", f"--net={netns}", "ip", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise WorkloadError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.returncode}")
