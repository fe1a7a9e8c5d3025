"""Other people's programs as they are: a daemon with a pidfile that checks itself, a C echo
pair seen only through its output, a program with shared anonymous memory."""

from __future__ import annotations

import statistics
import sys
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
from runs import of_run

from harness import scenario
from harness.criu import get_backend
from harness.readiness import StartedReady
from harness.result import Outcome
from harness.runner import ScenarioRun
from harness.scenario import Scenario, Verify

pytestmark = pytest.mark.criu


def left_of(name: str, under: Path) -> list[psutil.Process]:
    """Processes named name left by runs under this test's own run directories: under pytest
    -n N, another test's daemon may be running meanwhile."""
    return [p for p in of_run(under) if name in " ".join(p.info["cmdline"] or [])]


def test_the_self_checking_daemon_migrates_and_leaves_nothing(
    backend_name: str, run_dirs_in_pytest_tmp: Path
) -> None:
    """A double-forked daemon whose helper leads a session of its own: tracked by its
    pidfile, frozen whole (no process-group timeout), asked with SIGTERM, PASS."""
    result = ScenarioRun(scenario.find("selfcheck-daemon"), get_backend(backend_name),
                         iterations=2, keep="never").run()
    assert result.outcome is Outcome.PASSED, result.reason
    assert result.reason == "2 migration(s) verified; the program's own check passed"
    dumps = [c for cycle in result.cycles for c in cycle.calls if c.action == "dump"]
    assert len(dumps) == 2 and all(c.error is None for c in dumps)
    assert left_of("selfcheck_daemon", run_dirs_in_pytest_tmp) == []


def test_the_self_checking_daemon_migrates_in_a_pid_namespace_under_an_init_of_its_own(
    run_dirs_in_pytest_tmp: Path,
) -> None:
    """Under --isolation ns the daemon cannot be the namespace's init (its launcher exits,
    and a namespace ends with its init): an init of the harness's runs the launcher, reaps
    the orphans, and is what CRIU dumps; the pidfile's pid is the namespace's, translated to
    find the daemon, which is the one asked (SIGTERM), its exit status the init's."""
    result = ScenarioRun(scenario.find("selfcheck-daemon"), get_backend("cli"),
                         iterations=2, keep="always", isolation="ns").run()
    assert result.outcome is Outcome.PASSED, result.reason
    assert result.reason == "2 migration(s) verified; the program's own check passed"
    run_dir = Path(result.artifacts)
    # The launcher was the init's child (pid 2 inside), exited 0; the daemon (a pid of the
    # namespace, not the host's) exited 0 on SIGTERM, reaped by the init too: orphaned when
    # the middle process exited. (The daemon removes its pidfile as it exits.)
    exits = (run_dir / "daemon.exits").read_text().splitlines()
    assert exits[:2] == ["child 2", "exit 2 0"], exits
    last, daemon, status = exits[-1].split()
    assert (last, status) == ("exit", "0") and 2 < int(daemon) < 100, exits
    assert (run_dir / "verdict").read_text().startswith("PASS")
    for cycle in result.cycles:
        [dump] = [c for c in cycle.calls if c.action == "dump"]
        assert dump.error is None
    assert left_of("selfcheck_daemon", run_dirs_in_pytest_tmp) == []


def test_a_self_check_that_does_not_say_pass_fails_the_run(run_dirs_in_pytest_tmp: Path) -> None:
    daemon = scenario.find("selfcheck-daemon")
    wants_more = replace(daemon, verify=replace(daemon.verify, pattern="^PASS 999999 "))
    result = ScenarioRun(wants_more, get_backend("rpc"), keep="never").run()
    assert result.outcome is Outcome.FAILED
    assert "does not say '^PASS 999999 '" in result.reason and "PASS" in result.reason
    status = replace(daemon, verify=replace(daemon.verify, exit_status=3, file=None))
    result = ScenarioRun(status, get_backend("rpc"), keep="never").run()
    assert result.outcome is Outcome.FAILED and "exited with status 0 (expected 3)" in result.reason
    assert left_of("selfcheck_daemon", run_dirs_in_pytest_tmp) == []


def test_a_daemon_whose_launcher_fails_is_an_error_naming_it(tmp_path: Path) -> None:
    daemon = scenario.find("selfcheck-daemon")
    [spec] = daemon.processes
    broken = replace(daemon, processes=(replace(spec, argv=(*spec.argv, "--interval", "0")),))
    result = ScenarioRun(broken, get_backend("rpc"), keep="never").run()
    assert result.outcome is Outcome.ERROR
    assert "daemon: the launcher exited with status 2" in result.reason


def test_a_log_pattern_program_has_a_downtime_like_the_event_log_one() -> None:
    """The C twin of dgram-echo is seen only through its output lines, stamped as they appear:
    its downtime is measured like the Python pair's, from its client's event log. Each is held
    to its own migration's window (first SIGSTOP to last SIGCONT), which the client's
    downtime must cover and not outlast by more than a round trip or two: CRIU's own times
    vary by tens of percent from one cycle to the next (more under pytest -n N), the window
    moves with them."""
    overhang: dict[str, list[float]] = {"dgram-echo": [], "native-dgram": []}
    for _ in range(2):
        for name, found in overhang.items():
            result = ScenarioRun(scenario.find(name), get_backend("rpc"), iterations=4,
                                 keep="never").run()
            assert result.outcome is Outcome.PASSED, result.reason
            assert all(c.timeline for c in result.cycles)
            for c in result.cycles:
                assert c.downtime_ms is not None and c.downtime_ms > 0
                window = (max(p.finished for p in c.phases)
                          - min(p.started for p in c.phases)) * 1000
                found.append(c.downtime_ms - window)
    assert all(len(found) == 8 for found in overhang.values()), overhang
    # Measured here: -2 to +10 ms for both, idle or with every CPU busy; down to -28 ms once
    # under pytest -n 4 (a round trip answered in the instant of the first SIGSTOP).
    assert all(-50 <= ms <= 80 for found in overhang.values() for ms in found), overhang
    python = statistics.median(overhang["dgram-echo"])
    native = statistics.median(overhang["native-dgram"])
    assert abs(native - python) <= 20, overhang


SHARED = """
import mmap, sys, time
shared = mmap.mmap(-1, 1 << 20, flags=mmap.MAP_SHARED)  # the kernel: "/dev/zero (deleted)"
n = 0
while True:
    n += 1
    shared[:8] = n.to_bytes(8, "little")
    print(f"tick {int.from_bytes(shared[:8], 'little')}", flush=True)
    time.sleep(0.01)
"""


def test_a_shared_anonymous_mapping_comes_back_with_no_difference(backend_name: str) -> None:
    dgram = scenario.find("dgram-echo")
    server = dgram.processes[0]
    spec = replace(server, role="shared", argv=(sys.executable, "-c", SHARED),
                   ready=StartedReady())
    program = Scenario(
        name="shared-anon", path=dgram.path, processes=(spec,), expect=dgram.expect,
        verify=Verify(log="{run_dir}/shared.stdout", pattern=r"^tick \d+$", min_progress=20),
    )
    result = ScenarioRun(program, get_backend(backend_name), keep="never").run()
    assert result.outcome is Outcome.PASSED, result.reason
    [cycle] = result.cycles
    assert cycle.differences == []
    assert cycle.downtime_ms is not None
