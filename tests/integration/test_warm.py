"""CRIU started ahead of its request (RpcBackend.warm), on real processes: the request is
served by the swrk started ahead, a restore's CRIU waiting in the role's cgroup is no member
of the workload (never frozen or killed with it), and whatever no request used ends with the
migration."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from harness.criu import RpcBackend, get_backend
from harness.criu.options import CriuOptions
from harness.criu.process import running_criu
from harness.sockets import queued_bytes, receive_queues
from harness.supervisor import Supervisor
from harness.waiting import wait_for

pytestmark = pytest.mark.criu

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def swrk_children() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and child.cmdline()[1:2] == ["swrk"]:
                found.append(child)
        except psutil.Error:
            continue  # gone meanwhile
    return found


def rpc() -> RpcBackend:
    backend = get_backend("rpc")
    assert isinstance(backend, RpcBackend)
    return backend


def test_a_dump_and_a_restore_use_the_criu_started_ahead(tmp_path: Path) -> None:
    backend = rpc()
    with Supervisor() as supervisor:
        workload = supervisor.spawn("sleeper", SLEEPER, tmp_path)
        dump = CriuOptions(tmp_path / "images", log_file="dump.log")
        restore = CriuOptions(tmp_path / "images", log_file="restore.log",
                              cgroup=workload.cgroup.path if workload.cgroup else None,
                              manage_cgroups="ignore")
        backend.warm("dump", dump, wait=True)
        backend.warm("restore", restore, wait=True)
        ahead = {p.pid for p in swrk_children()}
        assert len(ahead) == 2 and ahead <= running_criu()
        # A restore's CRIU waits in the role's cgroup, but is none of the workload's members.
        if workload.cgroup is not None:
            assert ahead & set(workload.cgroup.pids())
            assert workload.members() == [workload.pid]
            workload.freeze()
            assert all(psutil.Process(pid).status() != psutil.STATUS_STOPPED for pid in ahead)
        backend.dump(workload.pid, dump)
        # The dump was served by the swrk started ahead: no other was started, and it is gone.
        assert {p.pid for p in swrk_children()} < ahead
        workload.reap()
        call = backend.restore(restore)
        assert call.restored_pid == workload.pid
        workload.adopt(call.restored_pid)
        assert not swrk_children() and not running_criu()
        if workload.cgroup is not None:
            assert workload.members() == [workload.pid]
        backend.cool()


def test_what_no_request_used_ends_at_once_even_a_hanging_criu(tmp_path: Path) -> None:
    hanging = tmp_path / "hanging-criu"
    real = get_backend("cli").criu.path
    hanging.write_text('#!/bin/sh\ncase "$1" in swrk) exec sleep 1000 ;; esac\n'
                       f'exec {real} "$@"\n')
    hanging.chmod(0o755)
    backend = get_backend("rpc", str(hanging))
    for n in range(3):
        backend.warm("dump", CriuOptions(tmp_path / f"images-{n}", timeout=60), wait=True)
    started = [psutil.Process(pid) for pid in running_criu()]
    assert len(started) == 3
    # The script's swrk, once it has exec'd its sleep.
    wait_for(lambda: all(p.cmdline()[:2] == ["sleep", "1000"] for p in started), timeout=10)
    backend.cool()  # killed, not waited for until their 60 s deadline
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in started)
    assert not running_criu()


def test_the_quiesce_step_sees_a_queued_datagram_as_ss_does(tmp_path: Path) -> None:
    """sock_diag read directly (harness.sockets) against ss, on a real bound socket."""
    path = tmp_path / "q.sock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import socket, sys, time\n"
         "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
         f"s.bind({str(path)!r})\n"
         "print('bound', flush=True)\n"
         "sys.stdin.readline()\n"
         "s.recv(100)\n"
         "print('read', flush=True)\n"
         "time.sleep(60)\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "bound\n"
        assert queued_bytes(holder.pid) == 0
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"x" * 42, str(path))
        assert queued_bytes(holder.pid) == 42
        ss = subprocess.run(["ss", "-H", "-x", "-a", "-n"], capture_output=True, text=True,
                            check=True).stdout
        [row] = [line.split() for line in ss.splitlines() if str(path) in line]
        [(name, queued)] = [v for v in receive_queues().values() if v[0] == str(path)]
        assert queued == int(row[2]) == 42
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline() == "read\n"
        assert queued_bytes(holder.pid) == 0
    finally:
        holder.kill()
        holder.wait()


def test_a_criu_wrapper_started_ahead_is_never_frozen_with_the_workload(tmp_path: Path) -> None:
    """A criu that is a script forks before it execs the real one (the GPU bundle's does): a
    restore's, started ahead in the role's cgroup, must not have that child stopped by the
    role's freeze, or it never gets to serve its request."""
    real = get_backend("cli").criu.path
    wrapper = tmp_path / "criu"
    wrapper.write_text(f'#!/bin/sh\nsleep 1\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    backend = get_backend("rpc", str(wrapper))
    with Supervisor() as supervisor:
        workload = supervisor.spawn("sleeper", SLEEPER, tmp_path)
        if workload.cgroup is None:
            pytest.skip("no cgroup v2 here: a restore's CRIU is not in the role's cgroup")
        images = tmp_path / "images"
        restore = CriuOptions(images, log_file="restore.log", timeout=10,
                              cgroup=workload.cgroup.path, manage_cgroups="ignore")
        backend.warm("restore", restore, wait=True)
        [swrk] = [psutil.Process(pid) for pid in running_criu()]
        # The wrapper's own `sleep`, in the workload's cgroup while the workload is frozen.
        sleeping = wait_for(lambda: [p for p in swrk.children() if p.name() == "sleep"],
                            timeout=10)
        workload.freeze()
        assert all(p.status() != psutil.STATUS_STOPPED for p in sleeping)
        backend.dump(workload.pid, CriuOptions(images, log_file="dump.log", timeout=10))
        workload.reap()
        call = backend.restore(restore)
        assert call.restored_pid == workload.pid
        workload.adopt(call.restored_pid)
        backend.cool()
