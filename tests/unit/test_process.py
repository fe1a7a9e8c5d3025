"""Workload processes and their supervisor, on real processes (no CRIU needed)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import psutil
import pytest

from harness.departure import state_of, take_over
from harness.errors import WorkloadError
from harness.namespace import Namespaces
from harness.process import Workload
from harness.supervisor import Supervisor
from harness.waiting import wait_for

# A parent that forks a child, writes both pids, and sleeps: a small tree in its own session.
TREE = """
import os, sys, time
child = os.fork()
if child == 0:
    time.sleep(600)
    os._exit(0)
open(sys.argv[1], "w").write(f"{os.getpid()} {child}")
time.sleep(600)
"""


def test_leaving_the_block_kills_a_frozen_tree(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    with pytest.raises(RuntimeError), Supervisor() as supervisor:
        tree = supervisor.spawn("tree", [sys.executable, "-c", TREE, str(pids_file)], tmp_path)
        wait_for(lambda: pids_file.exists() and len(pids_file.read_text().split()) == 2,
                 timeout=10)
        parent, child = map(int, pids_file.read_text().split())
        assert os.getsid(parent) == parent == tree.pid  # a session of its own
        tree.freeze()
        assert psutil.Process(child).status() == psutil.STATUS_STOPPED
        raise RuntimeError("whatever ends the block")
    for pid in (parent, child):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert tree.exit_status is not None


def test_a_program_that_cannot_start_is_named(tmp_path: Path) -> None:
    with Supervisor() as supervisor, pytest.raises(WorkloadError, match="server.*no-such"):
        supervisor.spawn("server", ["/no-such/program"], tmp_path)


def test_output_goes_to_files_in_the_run_directory(tmp_path: Path) -> None:
    with Supervisor() as supervisor:
        w = supervisor.spawn("echo", [sys.executable, "-c", "print('hi'); import sys; "
                                      "print(sys.stdin.read() == '', file=sys.stderr)"], tmp_path)
        assert w.reap() == 0
    assert w.stdout_path.read_text() == "hi\n"
    assert w.stderr_path.read_text() == "True\n"  # stdin is /dev/null


def test_what_a_workload_is_goes_to_another_host_and_back(tmp_path: Path) -> None:
    """A daemon's namespace and pid there (departure.state_of) taken over by a workload the
    other host never started; a state that is not one is refused, nothing taken."""
    started = Workload(name="daemon", argv=["x"], run_dir=tmp_path, main=7,
                       namespaces=Namespaces(net=True, run_dir=str(tmp_path), hosts=("/a",),
                                             init=True, exits="/r/daemon.exits",
                                             pidfile="/r/daemon.pid"))
    state = json.loads(json.dumps(state_of(started)))
    there = Workload(name="daemon", argv=[], run_dir=tmp_path)
    take_over(there, state)
    assert (there.namespaces, there.main) == (started.namespaces, 7)
    plain = Workload(name="server", argv=[], run_dir=tmp_path)
    take_over(plain, json.loads(json.dumps(state_of(Workload("server", ["x"], tmp_path)))))
    assert (plain.namespaces, plain.main) == (None, None)
    for bad, message in [({"main": "7"}, "main '7' is not a pid"),
                         ({"namespaces": [1]}, "namespaces [1] is not a table"),
                         ({"namespaces": {"hosts": "/a"}}, "hosts '/a' is not a list")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            take_over(Workload(name="daemon", argv=[], run_dir=tmp_path), bad)
