"""Unix sockets of a process, and how much waits unread in their receive queues.

Why the harness cares: CRIU saves the datagrams queued on a socket but not their sender's
address (sk-packet.proto keeps the ``addr`` field reserved), so a request still queued at the
server when it is dumped comes back without a return address and can never be answered.
"""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

from harness.errors import WorkloadError
from harness.netns import in_netns


def unix_paths(pid: int) -> set[str]:
    """The bound paths of the process's AF_UNIX sockets (abstract and unnamed ones aside),
    read in its own network namespace (/proc/PID/net/unix): one of its own (harness.isolation)
    shows nothing in the harness's."""
    try:
        inodes = {
            link.removeprefix("socket:[").rstrip("]")
            for fd in os.listdir(f"/proc/{pid}/fd")
            if (link := _readlink(f"/proc/{pid}/fd/{fd}")).startswith("socket:[")
        }
        lines = Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]
    except OSError:
        return set()
    paths = set()
    for line in lines:
        # Num RefCount Protocol Flags Type St Inode Path
        cols = line.split(maxsplit=7)
        if len(cols) == 8 and cols[6] in inodes and cols[7].startswith("/"):
            paths.add(cols[7])
    return paths


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


# sock_diag (linux/sock_diag.h, linux/unix_diag.h): what ss reads, asked directly; running ss
# for every look cost 3-4 ms, and the quiesce step looks while the other workloads are frozen.
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
UDIAG_SHOW_NAME, UDIAG_SHOW_RQLEN = 0x01, 0x10
UNIX_DIAG_NAME, UNIX_DIAG_RQLEN = 0, 4
_NLMSGHDR = struct.Struct("=IHHII")
_UNIX_DIAG_REQ = struct.Struct("=BBHIIIII")
_UNIX_DIAG_MSG = struct.Struct("=BBBxIII")
_RTATTR = struct.Struct("=HH")


def _align(n: int) -> int:
    return (n + 3) & ~3


def _request() -> bytes:
    states = 0xFFFFFFFF  # every state
    nocookie = 0xFFFFFFFF
    body = _UNIX_DIAG_REQ.pack(socket.AF_UNIX, 0, 0, states, 0, UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN,
                               nocookie, nocookie)
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY,
                          NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + body


def _parse(msg: bytes, at: int, end: int) -> tuple[int, str, int]:
    """One unix_diag_msg: its inode, its name and its receive queue."""
    ino = _UNIX_DIAG_MSG.unpack_from(msg, at)[3]
    name, queued = "", 0
    at += _UNIX_DIAG_MSG.size
    while at + _RTATTR.size <= end:
        length, kind = _RTATTR.unpack_from(msg, at)
        if length < _RTATTR.size:
            break
        data = msg[at + _RTATTR.size:at + length]
        if kind == UNIX_DIAG_NAME:
            name = data.rstrip(b"\0").decode(errors="replace") if data[:1] != b"\0" else "@"
        elif kind == UNIX_DIAG_RQLEN:
            queued = struct.unpack_from("=I", data)[0]
        at += _align(length)
    return ino, name, queued


def _dump_unix(sk: socket.socket) -> dict[int, tuple[str, int]]:
    sk.send(_request())
    found: dict[int, tuple[str, int]] = {}
    while True:
        msg = sk.recv(1 << 16)
        at = 0
        while at + _NLMSGHDR.size <= len(msg):
            length, kind = _NLMSGHDR.unpack_from(msg, at)[:2]
            if kind == NLMSG_DONE:
                return found
            if kind == NLMSG_ERROR:
                err = -struct.unpack_from("=i", msg, at + _NLMSGHDR.size)[0]
                raise WorkloadError(f"sock_diag: {os.strerror(err)}")
            ino, name, queued = _parse(msg, at + _NLMSGHDR.size, at + length)
            found[ino] = (name, queued)
            at += _align(length)
        if not msg:
            return found


def receive_queues(netns: str | None = None) -> dict[int, tuple[str, int]]:
    """Every AF_UNIX socket of a network namespace (a /proc/PID/ns/net; None: the
    harness's), by inode: its name ("" unbound, "@" abstract) and its Recv-Q, in bytes (for
    a listening socket, connections waiting to be accepted), as ss -x shows them."""
    try:
        sk = in_netns(netns, lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW,
                                                   NETLINK_SOCK_DIAG))
    except OSError as exc:
        # Guessing "nothing queued" would hide the very loss the quiesce step prevents.
        raise WorkloadError(f"sock_diag: cannot open a netlink socket: {exc}") from exc
    with sk:
        return _dump_unix(sk)


def _own_netns(pid: int) -> bool:
    """Whether pid lives in another network namespace than the harness."""
    return _readlink(f"/proc/{pid}/ns/net") not in ("", _readlink("/proc/self/ns/net"))


def _socket_inodes(pid: int) -> set[int]:
    try:
        links = [_readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return set()
    return {int(link[8:-1]) for link in links if link.startswith("socket:[")}


def queued_bytes(pid: int) -> int:
    """How much waits unread on the process's bound unix sockets."""
    inodes = _socket_inodes(pid)
    if not inodes:
        return 0
    netns = f"/proc/{pid}/ns/net" if _own_netns(pid) else None
    return sum(queued for ino, (name, queued) in receive_queues(netns).items()
               if ino in inodes and name.startswith("/"))
