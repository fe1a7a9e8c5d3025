"""Every socket on the machine as the kernel's socket diagnostics (sock_diag, through ``ss``)
report it, by inode: its type, state, queues, name, and for unix sockets the peer's inode.

/proc/net/unix shows neither peers nor queues; sock_diag does, and it is what CRIU reads too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError

__all__ = ["InetSocket", "Sockets", "UnixSocket", "read_sockets"]

_UNIX_KINDS = {"u_str": "stream", "u_dgr": "dgram", "u_seq": "seqpacket"}


@dataclass(frozen=True)
class UnixSocket:
    inode: int
    kind: str  # stream, dgram, seqpacket
    state: str  # ss's: ESTAB, LISTEN, UNCONN, ...
    recv_q: int
    name: str  # "" when unbound; "@..." when abstract
    peer: int  # the peer socket's inode, 0 for none

    def describe(self) -> str:
        return f"unix {self.kind} socket {self.name or '(unbound)'}"


@dataclass(frozen=True)
class InetSocket:
    inode: int
    proto: str  # tcp, udp
    state: str
    recv_q: int
    local: str
    peer: str

    def describe(self) -> str:
        peer = f" -> {self.peer}" if self.state == "ESTAB" else ""
        return f"{self.proto} socket {self.local}{peer} ({self.state})"


@dataclass
class Sockets:
    unix: dict[int, UnixSocket]
    inet: dict[int, InetSocket]
    netlink: set[int]


def _ss(*args: str) -> list[str]:
    ss = shutil.which("ss")
    if ss is None:
        raise UsageError("ss not found (install iproute2): needed to read sockets' peers and queues")
    out = subprocess.run([ss, "-H", "-a", "-n", *args], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()


def parse_unix(lines: list[str]) -> dict[int, UnixSocket]:
    """``ss -H -a -n -x``: Netid State Recv-Q Send-Q Local-Address Port Peer-Address Port."""
    found = {}
    for line in lines:
        cols = line.split()
        if len(cols) < 8 or cols[0] not in _UNIX_KINDS:
            continue
        name = " ".join(cols[4:-3])
        try:
            inode, peer = int(cols[-3]), int(cols[-1])
        except ValueError:
            continue
        found[inode] = UnixSocket(inode, _UNIX_KINDS[cols[0]], cols[1], int(cols[2]),
                                  "" if name == "*" else name, peer)
    return found


_INO = re.compile(r"\bino:(\d+)\b")


def parse_inet(lines: list[str]) -> dict[int, InetSocket]:
    """``ss -H -a -n -e -t -u``: Netid State Recv-Q Send-Q Local Peer, then ino:N among extras."""
    found = {}
    for line in lines:
        cols = line.split()
        m = _INO.search(line)
        if len(cols) < 6 or cols[0] not in ("tcp", "udp") or m is None:
            continue
        inode = int(m.group(1))
        if inode:
            found[inode] = InetSocket(inode, cols[0], cols[1], int(cols[2]), cols[4], cols[5])
    return found


def _netlink() -> set[int]:
    try:
        lines = Path("/proc/net/netlink").read_text().splitlines()[1:]
    except OSError:
        return set()
    return {int(cols[-1]) for line in lines if (cols := line.split()) and cols[-1].isdigit()}


def read_sockets() -> Sockets:
    return Sockets(parse_unix(_ss("-x")), parse_inet(_ss("-e", "-t", "-u")), _netlink())
