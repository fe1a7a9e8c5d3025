"""Reading ss's output (sock_diag): unix sockets with their peers, inet sockets by inode."""

from __future__ import annotations

import os
import socket

from harness import procfs
from harness.sockdiag import parse_inet, parse_unix, read_sockets

UNIX = [
    "u_str ESTAB  0 0 /tmp/r/server.sock 1059 * 1058",
    "u_dgr UNCONN 2048 0 /tmp/r/a dir/server.sock 563161 * 0",
    "u_seq ESTAB  0 0 * 77 * 78",
    "u_str LISTEN 0 128 @abstract 90 * 0",
    "nl    UNCONN 0 0 rtnl:kernel * ",
]
INET = [
    "tcp ESTAB 0 0 127.0.0.1:40000 127.0.0.1:5000 timer:(keepalive) ino:1234 sk:1 cgroup:/ <->",
    "udp UNCONN 512 0 127.0.0.1:5353 0.0.0.0:* ino:99 sk:2 cgroup:/ <->",
    "tcp TIME-WAIT 0 0 127.0.0.1:1 127.0.0.1:2 timer:(timewait) ino:0 sk:3",
]


def test_unix_lines() -> None:
    found = parse_unix(UNIX)
    assert found[1059].kind == "stream" and found[1059].peer == 1058
    assert found[1059].name == "/tmp/r/server.sock"
    assert found[563161].name == "/tmp/r/a dir/server.sock" and found[563161].recv_q == 2048
    assert found[77].kind == "seqpacket" and found[77].name == "" and found[77].peer == 78
    assert found[90].name == "@abstract" and found[90].state == "LISTEN"
    assert len(found) == 4


def test_inet_lines() -> None:
    found = parse_inet(INET)
    assert set(found) == {1234, 99}  # a socket without an inode (TIME-WAIT) belongs to nobody
    assert found[1234].proto == "tcp" and found[1234].state == "ESTAB"
    assert found[1234].peer == "127.0.0.1:5000"
    assert found[99].proto == "udp" and found[99].recv_q == 512


def test_a_socketpair_seen_from_both_sides() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        a.send(b"x" * 10)
        ia, ib = os.fstat(a.fileno()).st_ino, os.fstat(b.fileno()).st_ino
        sockets = read_sockets()
        assert sockets.unix[ia].peer == ib and sockets.unix[ib].peer == ia
        assert sockets.unix[ib].recv_q > 0
        task = procfs.read_task(os.getpid())
        assert {f.inode for f in task.fds if f.kind == "socket"} >= {ia, ib}
        assert os.getpid() in procfs.holders()[f"socket:{ia}"]
    finally:
        a.close()
        b.close()
