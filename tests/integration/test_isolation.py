"""--isolation ns on real CRIU: each workload the init of its own PID namespace (a session of
its own inside) and mount namespace (the run's /tmp), through both backends; what works with
none works with ns; a restore never collides with a pid in use."""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from harness import isolation, reproduce, scenario
from harness.criu import CriuOptions, get_backend
from harness.errors import CriuError
from harness.isolation import Isolation
from harness.namespace import hidden_by_tmp
from harness.rundir import RunDir
from harness.runner import ScenarioRun
from harness.supervisor import Supervisor
from harness.waiting import wait_for

pytestmark = pytest.mark.criu

# Writes its namespace pid, session and a file in /tmp, then waits.
PROBE = """
import os, sys, time
open("/tmp/probe", "w").write(f"{os.getpid()} {os.getsid(0)}")
print("up", flush=True)
while True:
    time.sleep(0.01)
"""


def _nspid(pid: int) -> list[str]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(line.split()[1:] for line in status if line.startswith("NSpid:"))


def _mounts(pid: int) -> list[tuple[str, str]]:
    """(mount point, filesystem type) of each mount the process sees."""
    rows = [line.split() for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()]
    return [(row[4], row[row.index("-") + 1]) for row in rows]


def test_a_workload_is_the_init_of_its_namespaces_before_and_after(backend_name: str) -> None:
    run_dir = RunDir("ns-probe")
    try:
        ns = isolation.namespaces(Isolation.NS, run_dir.path)
        with Supervisor("ns-probe") as supervisor:
            w = supervisor.spawn("probe", [sys.executable, "-c", PROBE], run_dir.path,
                                 namespaces=ns)
            wait_for(lambda: w.stdout_path.read_text().startswith("up"), timeout=10,
                     interval=0.01)
            # pid 1 of its own namespace, leading a session of its own inside it; its /tmp
            # is the run's.
            assert _nspid(w.pid)[-1] == "1" and len(_nspid(w.pid)) == 2
            assert (isolation.tmp_dir(run_dir.path) / "probe").read_text() == "1 1"
            mounts = _mounts(w.pid)
            expected = [("/", "ext4"), ("/proc", "proc"), ("/dev", "devtmpfs"),
                        ("/dev/shm", "tmpfs"), ("/tmp", mounts[4][1]),
                        (str(run_dir.path), mounts[5][1])]
            # A checkout (or virtual environment) under /tmp is bound again after them.
            expected += [(path, fs) for path, (_, fs) in zip(hidden_by_tmp(), mounts[6:])]
            assert mounts == expected
            assert str(os.stat("/proc/self/ns/mnt").st_ino) not in os.readlink(
                f"/proc/{w.pid}/ns/mnt")

            backend = get_backend(backend_name)
            images = run_dir.subdir("images")
            w.freeze()
            backend.dump(w.pid, isolation.criu_options(
                Isolation.NS, CriuOptions(images, log_file="dump.log"), "dump", run_dir.path))
            w.reap()
            call = backend.restore(isolation.criu_options(
                Isolation.NS, CriuOptions(images, log_file="restore.log"), "restore",
                run_dir.path))
            assert call.restored_pid is not None
            w.adopt(call.restored_pid)
            w.thaw()
            assert _nspid(w.pid)[-1] == "1"
            assert [m for m, _ in _mounts(w.pid)] == [m for m, _ in mounts]
            assert w.alive()
    finally:
        run_dir.remove()


@pytest.mark.parametrize("name", ["dgram-echo", "stream-tree"])
def test_migrates_in_ns_as_without(backend_name: str, name: str) -> None:
    result = ScenarioRun(scenario.find(name), get_backend(backend_name), isolation="ns").run()
    assert result.outcome == "passed", result.reason
    assert result.isolation == "ns" and result.transport == "local"
    assert result.messages_lost == 0 and result.client_errors == 0
    # The fingerprints compared each process by the pid it sees: the same after the restore.
    [cycle] = result.cycles
    assert cycle.differences == [] or all(d.allowed for d in cycle.differences)
    dumps = [c for c in cycle.calls if c.action == "dump"]
    assert all(c.criu_options["external"] for c in dumps)


def test_stream_echo_fails_in_ns_by_its_signature() -> None:
    result = ScenarioRun(scenario.find("stream-echo"), get_backend("cli"), isolation="ns").run()
    assert result.outcome == "xfailed", result.reason
    assert "Can't dump half of stream unix connection" in (result.criu_error or "")
    assert result.resumed_after_failure is True


def test_scenario_file_isolation_and_the_runs_override() -> None:
    dgram = replace(scenario.find("dgram-echo"), isolation="ns")
    run = ScenarioRun(dgram, get_backend("rpc"))
    assert run.isolation is Isolation.NS
    assert ScenarioRun(dgram, get_backend("rpc"), isolation="none").isolation is Isolation.NONE


def test_a_kept_ns_run_restores_again(tmp_path: Path) -> None:
    # An xpassed run keeps its directory; its images restore again with the recorded
    # options (root, external mounts) through `criu-harness restore`.
    dgram = scenario.find("dgram-echo")
    fails = scenario.Expectation(outcome="fails", action="dump", signature="never printed")
    result = ScenarioRun(replace(dgram, expect=fails), get_backend("rpc"), isolation="ns",
                         bundle_into=tmp_path).run()
    assert result.outcome == "xpassed"
    run = Path(result.artifacts)
    try:
        assert any((run / "images" / "server").glob("mountpoints-*.img"))
        attempts = reproduce.retry_restore(run)
        assert [a.role for a in attempts] == ["server", "client"]
        assert all(a.ok for a in attempts), [a.error for a in attempts]
    finally:
        shutil.rmtree(run, ignore_errors=True)


def _restore_beside_the_original(backend_name: str, iso: Isolation) -> CriuError | None:
    """Dump a running sleeper with --leave-running and restore it while it still runs."""
    run_dir = RunDir("ns-collide")
    try:
        with Supervisor("ns-collide") as supervisor:
            w = supervisor.spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"],
                                 run_dir.path, namespaces=isolation.namespaces(iso, run_dir.path))
            time.sleep(0.2)
            backend = get_backend(backend_name)
            images = run_dir.subdir("images")
            dump = CriuOptions(images, log_file="dump.log", leave_running=True)
            backend.dump(w.pid, isolation.criu_options(iso, dump, "dump", run_dir.path))
            try:
                call = backend.restore(isolation.criu_options(
                    iso, CriuOptions(images, log_file="restore.log"), "restore", run_dir.path))
            except CriuError as err:
                return err
            assert call.restored_pid is not None and call.restored_pid != w.pid
            assert w.alive()  # the restored copy is in the run's cgroup: it ends with the run
            return None
    finally:
        run_dir.remove()


def test_no_pid_collision_in_ns(backend_name: str) -> None:
    assert _restore_beside_the_original(backend_name, Isolation.NS) is None


def test_without_ns_the_same_restore_collides() -> None:
    err = _restore_beside_the_original("cli", Isolation.NONE)
    assert err is not None and "File exists" in (err.signature or ""), err


def test_ns_net_migrates() -> None:
    result = ScenarioRun(scenario.find("dgram-echo"), get_backend("cli"), isolation="ns+net").run()
    assert result.outcome == "passed", result.reason
    assert result.messages_lost == 0
    [cycle] = result.cycles
    assert all(c.criu_options["network_lock"] == "nftables" for c in cycle.calls)


@pytest.mark.parametrize("iso", [Isolation.NONE, Isolation.NS])
def test_the_restored_tree_is_born_in_the_roles_cgroup(backend_name: str, iso: Isolation) -> None:
    # CRIU leaves cgroups alone (--manage-cgroups=ignore) and the restoring CRIU runs in the
    # role's cgroup: what it forks is there, and ends with the run.
    run_dir = RunDir("cg-restore")
    try:
        with Supervisor("cg-restore") as supervisor:
            w = supervisor.spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"],
                                 run_dir.path, namespaces=isolation.namespaces(iso, run_dir.path))
            assert w.cgroup is not None
            time.sleep(0.2)
            backend = get_backend(backend_name)
            images = run_dir.subdir("images")

            def opts(action: str) -> CriuOptions:
                assert w.cgroup is not None
                base = CriuOptions(images, log_file=f"{action}.log", cgroup=w.cgroup.path,
                                   manage_cgroups="ignore")
                return isolation.criu_options(iso, base, action, run_dir.path)

            w.freeze()
            backend.dump(w.pid, opts("dump"))
            w.reap()
            call = backend.restore(opts("restore"))
            assert call.restored_pid is not None
            w.adopt(call.restored_pid)
            assert w.pid in w.cgroup.pids()
            own = Path(f"/proc/{w.pid}/cgroup").read_text().splitlines()
            assert any(line.endswith(f"/{w.cgroup.path.parent.name}/sleeper") for line in own)
    finally:
        run_dir.remove()
