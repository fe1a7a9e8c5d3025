"""Visible-state fingerprints: what diff() reports, and what a live process looks like."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from harness.difference import Difference, Inspection, describe, diff, diff_trees
from harness.errors import WorkloadError
from harness.fingerprint import Fd, Fingerprint, take, take_tree
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
    fds[7] = Fd("pipe", "pipe@fd7")
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
                   "socket unix stream (unbound) @fd4 flags 2")
    assert d.allowed_by(["fd *: socket unix stream /* -> socket unix stream (unbound)*"])
    assert not d.allowed_by(["fd *: file *"])
    assert describe([d]) == (
        "tree (pid 5): fd 4: socket unix stream /r/c.sock flags 2 -> "
        "socket unix stream (unbound) @fd4 flags 2"
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
    # The two ends of one pipe are named alike, by the lowest fd holding it, never by inode.
    pipes = sorted(fd.target for fd in print_.fds.values() if fd.kind == "pipe")
    assert pipes and all(p.startswith("pipe@fd") for p in pipes)
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


def test_unbound_sockets_are_named_by_their_lowest_fd() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        mine = take(os.getpid())
        names = {mine.fds[a.fileno()].target, mine.fds[b.fileno()].target}
        assert names == {f"unix stream (unbound) @fd{a.fileno()}",
                         f"unix stream (unbound) @fd{b.fileno()}"}
    finally:
        a.close()
        b.close()


SHARED = """
import mmap, os, signal, socket, sys
shared = mmap.mmap(-1, 4096, flags=mmap.MAP_SHARED)   # shared anonymous: "/dev/zero (deleted)"
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)   # fds 3 and 4: unbound
named = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)      # fd 5: bound
named.bind(sys.argv[1])
c, d = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)   # fds 6 and 7: unbound
os.kill(os.getpid(), signal.SIGSTOP)
"""


@contextmanager
def stopped(*argv: str) -> Iterator[psutil.Process]:
    """A process that stops itself once set up; killed at the end."""
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL)
    try:
        child = psutil.Process(proc.pid)
        wait_for(lambda: child.status() == psutil.STATUS_STOPPED, timeout=10)
        yield child
    finally:
        proc.kill()
        proc.wait()


def test_unnamed_sockets_keep_their_names_when_another_socket_changes(tmp_path: Path) -> None:
    """One socket losing its name is one difference, not a renumbering of every later one."""
    with stopped(sys.executable, "-c", SHARED, str(tmp_path / "s.sock")) as child:
        before = take(child.pid)
    names = {n: fd.target for n, fd in before.fds.items() if fd.kind == "socket"}
    assert names[3] == "unix dgram (unbound) @fd3" and names[7] == "unix dgram (unbound) @fd7"
    # As after a restore that gave fd 5 no name (what CRIU does to a tree's socket pair).
    fds = dict(before.fds)
    fds[5] = Fd("socket", "unix dgram (unbound) @fd5", fds[5].flags)
    assert [d.field for d in diff(before, replace(before, fds=fds))] == ["fd 5"]


def test_a_shared_anonymous_mapping_restored_from_a_memfd_is_the_same_mapping(
    tmp_path: Path,
) -> None:
    with stopped(sys.executable, "-c", SHARED, str(tmp_path / "s.sock")) as child:
        before = take(child.pid)
    assert ("/dev/zero (deleted)", "rw-s") in before.maps
    # CRIU restores it from a memfd; the kernel names that one "/memfd:/dev/zero (deleted)".
    from harness.fingerprint import SAME_MAPPING

    assert SAME_MAPPING["/memfd:/dev/zero (deleted)"] == "/dev/zero (deleted)"
