"""Visible-state fingerprints: what diff() reports, and what a live process looks like."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from harness.errors import WorkloadError
from harness.fingerprint import (
    Difference,
    Fd,
    Fingerprint,
    Inspection,
    describe,
    diff,
    diff_trees,
    take,
    take_tree,
)
from harness.waiting import wait_for


def fp(**kw: object) -> Fingerprint:
    base = Fingerprint(
        pid=100,
        cmdline=("python", "-m", "server"),
        cwd="/run",
        state="T",
        fds={0: Fd("file", "/dev/null", "0100002"), 3: Fd("file", "/run/log", "02102001", 80),
             4: Fd("socket", "unix dgram /run/s.sock", "02000002")},
        maps={("/usr/bin/python3", "r-xp"): 4096, ("[heap]", "rw-p"): 8192},
        rlimits={"nofile": (1024, 4096)},
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_same_fingerprint_has_no_difference() -> None:
    assert diff(fp(), fp()) == []


def test_each_field_is_named() -> None:
    after = fp(
        pid=101,
        cwd="/",
        state="R",
        fds={**fp().fds, 3: Fd("file", "/elsewhere", "02102001", 0)},
        maps={("/usr/bin/python3", "r-xp"): 4096, ("[heap]", "rw-p"): 4096},
        rlimits={"nofile": (1024, 1024)},
    )
    fields = [d.field for d in diff(fp(), after, "server")]
    assert fields == ["pid", "cwd", "state", "fd 3", "maps rw-p [heap]", "rlimit nofile"]
    [fd3] = [d for d in diff(fp(), after, "server") if d.field == "fd 3"]
    assert fd3.before == "file /run/log flags 02102001 pos 80"
    assert fd3.after == "file /elsewhere flags 02102001 pos 0"
    assert fd3.process == "server"


def test_missing_and_new_fds_and_maps() -> None:
    fds = dict(fp().fds)
    del fds[4]
    fds[7] = Fd("pipe", "pipe#1")
    maps = {**fp().maps, ("/lib/libc.so.6", "r-xp"): 4096}
    out = {d.field: d for d in diff(fp(), fp(fds=fds, maps=maps))}
    assert out["fd 4"].after == "(none)" and out["fd 7"].before == "(none)"
    assert out["maps r-xp /lib/libc.so.6"].before == "(none)"


def test_rlimits_read_as_limits() -> None:
    infinity = -1  # resource.RLIM_INFINITY on Linux
    [d] = diff(fp(), fp(rlimits={"nofile": (1024, infinity)}))
    assert (d.before, d.after) == ("1024/4096", "1024/unlimited")


def test_running_drops_what_a_running_process_changes_itself() -> None:
    moved = fp(state="S", fds={**fp().fds, 3: Fd("file", "/run/log", "02102001", 4000)})
    assert diff(fp().running(), moved.running()) == []
    elsewhere = fp(fds={**fp().fds, 3: Fd("file", "/other", "02102001", 80)})
    assert [d.field for d in diff(fp().running(), elsewhere.running())] == ["fd 3"]


def test_trees_are_matched_by_pid() -> None:
    before = {100: fp(), 101: fp(pid=101)}
    after = {100: fp(), 102: fp(pid=102)}
    out = diff_trees(before, after, "tree")
    assert [(d.process, d.field, d.before, d.after) for d in out] == [
        ("tree (pid 101)", "process", "present", "absent"),
        ("tree (pid 102)", "process", "absent", "present"),
    ]


def test_allowed_patterns_and_description() -> None:
    d = Difference("tree (pid 5)", "fd 4", "socket unix stream /r/c.sock flags 2",
                   "socket unix stream (unbound) #1 flags 2")
    assert d.allowed_by(["fd *: socket unix stream /* -> socket unix stream (unbound)*"])
    assert not d.allowed_by(["fd *: file *"])
    assert describe([d]) == (
        "tree (pid 5): fd 4: socket unix stream /r/c.sock flags 2 -> "
        "socket unix stream (unbound) #1 flags 2"
    )


# --- a live process (no CRIU) -----------------------------------------------------------------

CHILD = """
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
r, w = os.pipe()
os.dup2(w, 9)
log = open(sys.argv[2], "a")
log.write("x" * 10)
log.flush()
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def child(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "s.sock"), str(tmp_path / "log")],
        stdout=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield proc
    proc.kill()
    proc.wait()


def test_take_describes_a_live_process(child: subprocess.Popen[str], tmp_path: Path) -> None:
    os.kill(child.pid, signal.SIGSTOP)
    # The signal is asynchronous: look once the kernel reports the task stopped.
    wait_for(lambda: psutil.Process(child.pid).status() == psutil.STATUS_STOPPED, timeout=5)
    print_ = take(child.pid)
    assert print_.pid == child.pid and print_.state == "T"
    assert print_.cwd == str(tmp_path)
    kinds = {fd.kind for fd in print_.fds.values()}
    assert {"file", "socket", "pipe"} <= kinds
    assert any(fd.target == f"unix dgram {tmp_path}/s.sock" for fd in print_.fds.values())
    [log] = [fd for fd in print_.fds.values() if fd.target == str(tmp_path / "log")]
    assert log.pos == 10
    # The two ends of one pipe are named alike by first appearance, never by inode.
    pipes = sorted(fd.target for fd in print_.fds.values() if fd.kind == "pipe")
    assert pipes and all(p.startswith("pipe#") for p in pipes)
    assert "nofile" in print_.rlimits and print_.maps
    # Taken twice while stopped: nothing differs.
    assert diff(print_, take(child.pid)) == []
    os.kill(child.pid, signal.SIGCONT)


def test_take_tree_and_a_gone_process(child: subprocess.Popen[str]) -> None:
    assert list(take_tree(child.pid)) == [child.pid]
    child.kill()
    child.wait()
    with pytest.raises(WorkloadError, match=str(child.pid)):
        take(child.pid)


def test_inspection_records_a_look_that_failed(child: subprocess.Popen[str]) -> None:
    class Gone:
        pid = child.pid

    child.kill()
    child.wait()
    looks = Inspection(frozen=["server"])
    looks.before_dump("server", Gone())
    [problem] = looks.differences()
    assert problem.field == "fingerprint" and str(child.pid) in problem.after


def test_unbound_sockets_are_named_by_first_appearance() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        mine = take(os.getpid())
        names = {mine.fds[a.fileno()].target, mine.fds[b.fileno()].target}
        assert all(n.startswith("unix stream (unbound) #") for n in names) and len(names) == 2
    finally:
        a.close()
        b.close()
