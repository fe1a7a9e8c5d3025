"""Unix sockets of a process, and how much waits unread in their receive queues.

Why the harness cares: CRIU saves the datagrams queued on a socket but not their sender's
address (sk-packet.proto keeps the ``addr`` field reserved), so a request still queued at the
server when it is dumped comes back without a return address and can never be answered.
"""

from __future__ import annotations

import shutil
import subprocess

import psutil

from harness.errors import WorkloadError


def unix_paths(pid: int) -> set[str]:
    """The bound paths of the process's AF_UNIX sockets (abstract and unnamed ones aside)."""
    try:
        conns = psutil.Process(pid).net_connections(kind="unix")
    except psutil.Error:
        return set()
    # For AF_UNIX psutil gives the bound path as a plain string ("" when unbound).
    return {str(c.laddr) for c in conns if isinstance(c.laddr, str) and c.laddr.startswith("/")}


def receive_queues() -> dict[str, int]:
    """Recv-Q of every bound AF_UNIX socket on the machine, by path (from ``ss``, which reads
    sock_diag: /proc/net/unix does not show queues)."""
    ss = shutil.which("ss")
    if ss is None:
        # Guessing "nothing queued" would hide the very loss the quiesce step prevents.
        raise WorkloadError("ss not found (install iproute2): needed to see socket queues")
    out = subprocess.run([ss, "-H", "-x", "-a", "-n"], capture_output=True, text=True).stdout
    queues: dict[str, int] = {}
    for line in out.splitlines():
        cols = line.split()
        # Netid State Recv-Q Send-Q Local-Address Port Peer-Address Port
        if len(cols) >= 5 and cols[4].startswith("/") and cols[2].isdigit():
            queues[cols[4]] = queues.get(cols[4], 0) + int(cols[2])
    return queues


def queued_bytes(pid: int) -> int:
    """How much waits unread on the process's bound unix sockets."""
    paths = unix_paths(pid)
    if not paths:
        return 0
    queues = receive_queues()
    return sum(queues.get(p, 0) for p in paths)
