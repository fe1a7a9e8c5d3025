"""Unix sockets of a process, and how much waits unread in their receive queues.

Why the harness cares: CRIU saves the datagrams queued on a socket but not their sender's
address (sk-packet.proto keeps the ``addr`` field reserved), so a request still queued at the
server when it is dumped comes back without a return address and can never be answered.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from harness.errors import WorkloadError


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


def receive_queues(pid: int | None = None) -> dict[str, int]:
    """Recv-Q of every bound AF_UNIX socket in pid's network namespace (default: the
    harness's), by path (from ``ss``, which reads sock_diag: /proc/net/unix does not show
    queues)."""
    ss = shutil.which("ss")
    if ss is None:
        # Guessing "nothing queued" would hide the very loss the quiesce step prevents.
        raise WorkloadError("ss not found (install iproute2): needed to see socket queues")
    argv = [ss, "-H", "-x", "-a", "-n"]
    if pid is not None and _own_netns(pid):
        argv = ["nsenter", f"--net=/proc/{pid}/ns/net", *argv]
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    queues: dict[str, int] = {}
    for line in out.splitlines():
        cols = line.split()
        # Netid State Recv-Q Send-Q Local-Address Port Peer-Address Port
        if len(cols) >= 5 and cols[4].startswith("/") and cols[2].isdigit():
            queues[cols[4]] = queues.get(cols[4], 0) + int(cols[2])
    return queues


def _own_netns(pid: int) -> bool:
    """Whether pid lives in another network namespace than the harness."""
    return _readlink(f"/proc/{pid}/ns/net") not in ("", _readlink("/proc/self/ns/net"))


def queued_bytes(pid: int) -> int:
    """How much waits unread on the process's bound unix sockets."""
    paths = unix_paths(pid)
    if not paths:
        return 0
    queues = receive_queues(pid)
    return sum(queues.get(p, 0) for p in paths)
