"""`criu-harness run --destination` to a `criu-harness receive` on a second host, as the
Vagrantfile's two-machine mode runs them (README, "A second host for real").

The second host is a network namespace of its own across a veth pair, with a file system of
its own over the temp directory: the run directory is made there anew and holds only what the
source sent (its images, the workloads' files), so the restore there could not read anything
of the source's by accident. The source runs in the other namespace and reaches the receiver
only by its address, as it would another machine. Everything else is the commands as a user
types them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from runs import of_run

from harness import cgroup, scenario
from harness.netns import VethPair
from harness.wire import DEFAULT_PORT

pytestmark = pytest.mark.criu

HARNESS = [sys.executable, "-m", "harness"]
ROOT = Path(__file__).resolve().parents[2]
# The second host's own disk: a tmpfs over the temp directory, in a mount namespace of its own.
OWN_DISK = 'mount -t tmpfs -o mode=0700 tmpfs "$1" && shift && exec "$@"'


@contextmanager
def second_host(tmpdir: Path, out: Path, *args: str) -> Iterator[tuple[VethPair, subprocess.Popen[bytes]]]:
    """A veth pair, and `criu-harness receive --listen` on its destination side, listening."""
    with VethPair(None) as pair:
        assert pair.destination.netns is not None
        with out.open("wb") as log:
            receiver = subprocess.Popen(
                ["nsenter", f"--net={pair.destination.netns}", "unshare", "--mount",
                 "--propagation", "private", "sh", "-c", OWN_DISK, "sh", str(tmpdir),
                 *HARNESS, "receive", "--listen", pair.destination.address, *args],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while "receiving on" not in out.read_text():
                assert receiver.poll() is None, out.read_text()
                assert time.monotonic() < deadline, out.read_text()
                time.sleep(0.05)
            yield pair, receiver
        finally:
            if receiver.poll() is None:
                os.killpg(receiver.pid, signal.SIGINT)
                try:
                    receiver.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(receiver.pid, signal.SIGKILL)
                    receiver.wait()


def source_argv(pair: VethPair, *args: str) -> list[str]:
    """`criu-harness run ARGS --destination` on the source side."""
    assert pair.source.netns is not None
    return ["nsenter", f"--net={pair.source.netns}", *HARNESS, "run", *args,
            "--destination", pair.destination.address]


def from_source(pair: VethPair, *args: str) -> subprocess.CompletedProcess[str]:
    """`criu-harness run ... --destination` from the source side, to its end."""
    return subprocess.run(source_argv(pair, *args), cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)


def start_source(pair: VethPair, tmp_path: Path,
                 scenario_name: str = "dgram-echo") -> subprocess.Popen[str]:
    """`criu-harness run SCENARIO --destination` from the source side, in the background,
    its report in tmp_path/report."""
    argv = source_argv(pair, scenario_name, "--report", str(tmp_path / "report"))
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


@dataclass
class Migrated:
    """One `run --destination` to a `receive --once`: both sides' exit statuses and words."""

    source: subprocess.CompletedProcess[str]
    receiver_status: int
    receiver_out: str
    source_address: str
    destination_address: str


def migrate_once(tmpdir: Path, tmp_path: Path, *args: str) -> Migrated:
    out = tmp_path / "receiver.out"
    with second_host(tmpdir, out, "--once") as (pair, receiver):
        src = from_source(pair, *args, "--report", str(tmp_path / "report"))
        status = receiver.wait(timeout=60)
    return Migrated(src, status, out.read_text(), pair.source.address, pair.destination.address)


def the_result(tmp_path: Path) -> dict[str, Any]:
    [result] = json.loads((tmp_path / "report" / "results.json").read_text())["scenarios"]
    return dict(result)


def run_names(tmpdir: Path, report: Path | None = None) -> set[str]:
    """The names of this test's run directories: kept ones in tmpdir, and those a report's
    CRIU calls and artifacts name (a passing run's directory is gone)."""
    names = {p.name for p in tmpdir.glob("criu-harness-*")}
    if report is not None and (report / "results.json").exists():
        for result in json.loads((report / "results.json").read_text())["scenarios"]:
            paths = [result["artifacts"]] + [
                call["criu_options"]["images_dir"]
                for cycle in result["cycles"] for call in cycle["calls"]]
            names |= {part for path in paths for part in Path(path).parts
                      if part.startswith("criu-harness-")}
    return names


def nothing_left(tmpdir: Path, names: set[str]) -> None:
    """No process of this test's runs, and no cgroup of theirs on either side (the
    receiver's is the run's name with -arrived): other tests may run meanwhile (-n N)."""
    assert names, "no run to look for"
    assert of_run(tmpdir) == []
    top = cgroup.root()
    if top is not None and (top / cgroup.BASE).is_dir():
        assert [p for p in (top / cgroup.BASE).iterdir()
                if p.name.split(".", 1)[-1].removesuffix("-arrived") in names] == []


def test_dgram_echo_migrates_to_the_second_host_with_nothing_lost(
    tmp_path: Path, run_dirs_in_pytest_tmp: Path, backend_name: str
) -> None:
    tmpdir = run_dirs_in_pytest_tmp
    m = migrate_once(tmpdir, tmp_path, "dgram-echo", "--backend", backend_name)
    assert m.receiver_status == 0, m.receiver_out
    assert m.source.returncode == 0, m.source.stdout + m.source.stderr
    result = the_result(tmp_path)
    assert result["outcome"] == "passed", result["reason"]
    assert result["messages_lost"] == 0 and result["answered"] > 0
    assert result["transport"] == "page-server"
    assert result["destination"] == f"{m.destination_address}:{DEFAULT_PORT}"
    [cycle] = result["cycles"]
    # The first half ran here, the second there, in the plan's order, all of it ok.
    steps = [(p["step"], p["role"]) for p in cycle["phases"] if p["step"] != "inspect"]
    assert steps == [("freeze", "server"), ("freeze", "client"), ("quiesce", "server"),
                     ("dump", "server"), ("reap", "server"), ("dump", "client"),
                     ("reap", "client"), ("restore", "server"), ("resume", "server"),
                     ("restore", "client"), ("resume", "client")], steps
    assert all(p["ok"] for p in cycle["phases"])
    # Each restore read the destination's directory, where the page server wrote the pages.
    restores = [c for c in cycle["calls"] if c["action"] == "restore"]
    assert [Path(c["criu_options"]["images_dir"]).parts[-3:] for c in restores] == [
        ("dst", "images", "server"), ("dst", "images", "client")]
    # The looks taken at the source before the dumps were compared there after the restores.
    assert [p["role"] for p in cycle["phases"] if p["step"] == "inspect"] == [
        "server", "client", "server", "client"]
    assert all(d["allowed"] for d in cycle["differences"]), cycle["differences"]
    assert f"(from {m.source_address})" in m.receiver_out and "passed" in m.receiver_out
    assert list(tmpdir.glob("criu-harness-*")) == []  # a passing run keeps nothing
    nothing_left(tmpdir, run_names(tmpdir, tmp_path / "report"))


def test_a_dump_refused_at_the_source_is_judged_there_and_nothing_arrives(
    tmp_path: Path, run_dirs_in_pytest_tmp: Path
) -> None:
    tmpdir = run_dirs_in_pytest_tmp
    m = migrate_once(tmpdir, tmp_path, "stream-echo", "--backend", "cli")
    assert m.receiver_status == 0, m.receiver_out
    assert m.source.returncode == 0, m.source.stdout + m.source.stderr
    result = the_result(tmp_path)
    assert result["outcome"] == "xfailed" and result["resumed_after_failure"] is True
    assert "Can't dump half of stream unix connection" in result["criu_error"]
    assert "nothing arrived" in m.receiver_out
    nothing_left(tmpdir, run_names(tmpdir, tmp_path / "report"))


def test_a_restore_that_fails_at_the_destination_keeps_the_evidence_on_both_sides(
    tmp_path: Path, run_dirs_in_pytest_tmp: Path
) -> None:
    tmpdir = run_dirs_in_pytest_tmp
    hook = tmp_path / "fail-restore.sh"
    hook.write_text('#!/bin/sh\n[ "$CRTOOLS_SCRIPT_ACTION" = pre-restore ] && exit 1\nexit 0\n')
    hook.chmod(0o755)
    text = scenario.find("dgram-echo").path.read_text()
    broken = tmp_path / "dgram-echo-restore-fails.toml"
    broken.write_text(text.replace(
        "[expect]\n", f'[criu.restore]\nextra_args = ["--action-script", "{hook}"]\n\n[expect]\n', 1))
    m = migrate_once(tmpdir, tmp_path, str(broken), "--backend", "cli")
    assert m.receiver_status == 1, m.receiver_out
    assert m.source.returncode == 1, m.source.stdout + m.source.stderr
    result = the_result(tmp_path)
    assert result["outcome"] == "failed"
    assert "criu restore failed" in result["reason"], result["reason"]
    assert f"the destination kept {m.destination_address}:{tmpdir}" in result["reason"]
    # The source keeps its own: the dumps' logs, the workloads' logs up to the dump.
    kept = Path(result["artifacts"])
    assert (kept / "images" / "server" / "dump.log").is_file()
    assert (kept / "client.events").is_file()
    assert "failed" in m.receiver_out
    nothing_left(tmpdir, run_names(tmpdir, tmp_path / "report"))


def test_a_dump_that_fails_after_another_rolls_back_with_its_pages_fetched_back(
    tmp_path: Path, run_dirs_in_pytest_tmp: Path
) -> None:
    """The server's dump sent its pages to the destination; the client's then fails (its
    post-dump action script exits 1): the server is restored at the source from its pages,
    fetched back, and the pair goes on there."""
    tmpdir = run_dirs_in_pytest_tmp
    hook = tmp_path / "fail-client-dump.sh"
    hook.write_text('#!/bin/sh\n[ "$CRTOOLS_SCRIPT_ACTION" = post-dump ] || exit 0\n'
                    'case "$(readlink -f "$CRTOOLS_IMAGE_DIR")" in */client) exit 1;; esac\n')
    hook.chmod(0o755)
    text = scenario.find("dgram-echo").path.read_text()
    head, rest = text.split("[expect]\n", 1)
    expect = ('[criu.dump]\nextra_args = ["--action-script", "' + str(hook) + '"]\n\n'
              '[expect]\noutcome = "fails"\naction = "dump"\n'
              'signature = "One of more action scripts failed"\n')
    failing = tmp_path / "dgram-echo-client-dump-fails.toml"
    failing.write_text(head + expect + rest[rest.index("\n["):])
    m = migrate_once(tmpdir, tmp_path, str(failing), "--backend", "rpc")
    assert m.source.returncode == 0, m.source.stdout + m.source.stderr
    result = the_result(tmp_path)
    assert result["outcome"] == "xfailed" and result["resumed_after_failure"] is True
    [cycle] = result["cycles"]
    assert [(p["step"], p["role"], p["ok"]) for p in cycle["phases"] if p["step"] in (
        "dump", "rollback")] == [("dump", "server", True), ("dump", "client", False),
                                 ("rollback", "server", True)]
    [restore] = [c for c in cycle["calls"] if c["action"] == "restore"]
    assert Path(restore["criu_options"]["images_dir"]).parts[-2:] == ("images", "server")
    assert restore["error"] is None
    assert "nothing arrived" in m.receiver_out
    nothing_left(tmpdir, run_names(tmpdir, tmp_path / "report"))


def test_a_daemon_in_a_pid_namespace_is_asked_at_the_destination(
    tmp_path: Path, run_dirs_in_pytest_tmp: Path
) -> None:
    """A program the harness did not write (the double-forking daemon with a pidfile), under
    --isolation ns: the destination never started it, so the source says which process of
    the namespace the daemon is; the destination asks that one (SIGTERM) after the restore,
    and the daemon's own check passes there."""
    tmpdir = run_dirs_in_pytest_tmp
    m = migrate_once(tmpdir, tmp_path, "selfcheck-daemon", "--isolation", "ns",
                     "--backend", "cli")
    assert m.receiver_status == 0, m.receiver_out
    assert m.source.returncode == 0, m.source.stdout + m.source.stderr
    result = the_result(tmp_path)
    assert result["outcome"] == "passed", result["reason"]
    assert result["reason"] == "migrated and verified; the program's own check passed"
    assert result["isolation"] == "ns"
    [cycle] = result["cycles"]
    assert [c["action"] for c in cycle["calls"] if c["error"] is None] == ["dump", "restore"]
    nothing_left(tmpdir, run_names(tmpdir, tmp_path / "report"))


def test_a_receiver_that_is_not_there_stops_the_run_before_anything_starts(
    tmp_path: Path, run_dirs_in_pytest_tmp: Path
) -> None:
    src = subprocess.run([*HARNESS, "run", "dgram-echo", "--destination", "127.0.0.1:9"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert src.returncode == 1
    assert "cannot reach a receiver at 127.0.0.1:9" in src.stdout, src.stdout
    assert "Traceback" not in src.stdout + src.stderr
    # Connected before anything started: the run directory holds no workload's file.
    [kept] = run_dirs_in_pytest_tmp.glob("criu-harness-dgram-echo-*")
    assert not list(kept.glob("*.events")) and not list(kept.glob("*.stdout"))
    nothing_left(run_dirs_in_pytest_tmp, run_names(run_dirs_in_pytest_tmp))


@pytest.mark.parametrize(("args", "message"), [
    (["run", "--destination", "10.0.0.1:x"], "--destination '10.0.0.1:x': port 'x' is not a number"),
    (["run", "--destination", "10.0.0.1", "--iterations", "2"], "--destination migrates once"),
    (["run", "--destination", "10.0.0.1", "--transport", "lazy"], "cannot be used with it"),
    (["run", "--destination", "10.0.0.1", "-j", "2"], "drop -j"),
    (["receive", "--listen", "10.0.0.1:70000"], "port 70000 out of range"),
    (["receive", "--listen", "192.0.2.1"], "--listen 192.0.2.1:27099: "),
])
def test_bad_two_host_options_get_one_line_and_status_2(args: list[str], message: str) -> None:
    proc = subprocess.run([*HARNESS, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def is_client(pid: int) -> bool:
    """Whether pid is the echo client itself: not the restore's CRIU that waits in its
    cgroup from hello on, nor the harness's fork of it that joins the cgroup before exec,
    nor a task CRIU has not finished restoring (it has CRIU's command line until then)."""
    try:
        return "harness.workloads.dgram" in psutil.Process(pid).cmdline()
    except psutil.Error:
        return False


def client_there(tmpdir: Path) -> list[int]:
    """The restored client's pid at the destination, once it runs there."""
    top = cgroup.root()
    assert top is not None
    pids = [int(pid) for run in tmpdir.glob("criu-harness-dgram-echo-*")
            for group in (top / cgroup.BASE).glob(f"*.{run.name}-arrived/client")
            for pid in (group / "cgroup.procs").read_text().split()]
    return [pid for pid in pids if is_client(pid)]


def arrival(tmpdir: Path, source: subprocess.Popen[str]) -> list[int]:
    """Wait until the client runs at the destination: its pid."""
    deadline = time.monotonic() + 60
    while not (client := client_there(tmpdir)):
        assert source.poll() is None, source.communicate()[0]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return client


def gone(tmpdir: Path, client: list[int]) -> None:
    """Wait (a little) for the run's processes, the client seen at the destination among
    them, to be gone; assert it is."""
    def running() -> bool:
        return bool(of_run(tmpdir)) or any(is_client(p) for p in client)

    deadline = time.monotonic() + 5
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(is_client(p) for p in client)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_a_receiver_killed_while_the_workload_runs_there_leaves_nothing(
    tmp_path: Path, run_dirs_in_pytest_tmp: Path, sig: signal.Signals
) -> None:
    """SIGKILL of the destination's harness (its keeper ends the workload), or Ctrl-C (it
    ends the workload itself), with the workload restored and running there; the source
    says what happened."""
    tmpdir = run_dirs_in_pytest_tmp
    with second_host(tmpdir, tmp_path / "receiver.out", "--once") as (pair, receiver):
        source = start_source(pair, tmp_path)
        client = arrival(tmpdir, source)
        os.kill(receiver.pid, sig)
        assert receiver.wait(timeout=30) == (130 if sig == signal.SIGINT else -sig)
        stdout, _ = source.communicate(timeout=120)
        gone(tmpdir, client)
    assert source.returncode == 1, stdout
    assert f"receiver {pair.destination.address}:{DEFAULT_PORT}" in stdout, stdout
    assert "Traceback" not in stdout, stdout
    nothing_left(tmpdir, run_names(tmpdir, tmp_path / "report"))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_a_source_killed_while_the_workload_runs_there_leaves_nothing(
    tmp_path: Path, run_dirs_in_pytest_tmp: Path, sig: signal.Signals
) -> None:
    """SIGKILL or Ctrl-C of the source's harness once the workload runs at the destination:
    the receiver still judges it (it is there, running) and then ends it as any run ends;
    nothing of the run is left on either side."""
    tmpdir = run_dirs_in_pytest_tmp
    out = tmp_path / "receiver.out"
    with second_host(tmpdir, out, "--once") as (pair, receiver):
        source = start_source(pair, tmp_path)
        client = arrival(tmpdir, source)
        names = run_names(tmpdir)  # the source's, gone once it ends
        os.kill(source.pid, sig)
        stdout, _ = source.communicate(timeout=60)
        assert receiver.wait(timeout=60) == 0, out.read_text()
        gone(tmpdir, client)
    assert source.returncode == (130 if sig == signal.SIGINT else -sig), stdout
    assert "Traceback" not in stdout + out.read_text(), stdout + out.read_text()
    said = out.read_text()
    assert "dgram-echo[page-server]  passed" in said and f"(from {pair.source.address})" in said
    nothing_left(tmpdir, names)


def test_a_receiver_killed_in_the_middle_of_a_dump_is_named_and_the_dump_log_kept(
    tmp_path: Path, run_dirs_in_pytest_tmp: Path
) -> None:
    """The receiver (and its page server) SIGKILLed while the server's pages are on their
    way: CRIU's dump fails on the broken connection, the source says the receiver went away
    during the dump, keeps the dump's log, and leaves nothing running on either side."""
    tmpdir = run_dirs_in_pytest_tmp
    text = scenario.find("dgram-echo").path.read_text()
    sock = '"--socket", "{run_dir}/server.sock",'
    assert sock in text
    big = tmp_path / "dgram-echo-300mib.toml"
    big.write_text(text.replace(sock, sock + ' "--ballast-mb", "300",', 1))

    def pages_arriving() -> bool:
        """Whether this run's page server at the destination has begun to write pages (seen
        through its own root: the destination's disk is its own)."""
        for proc in psutil.process_iter(["cmdline"]):
            argv = proc.info["cmdline"] or []
            if "page-server" not in argv or "--images-dir" not in argv:
                continue
            images = argv[argv.index("--images-dir") + 1]
            if images.startswith(str(tmpdir)):
                there = Path(f"/proc/{proc.pid}/root{images}")
                try:
                    return any(p.stat().st_size > 0 for p in there.glob("pages-*.img"))
                except OSError:
                    return False
        return False

    with second_host(tmpdir, tmp_path / "receiver.out", "--once") as (pair, receiver):
        source = start_source(pair, tmp_path, str(big))
        deadline = time.monotonic() + 60
        while not pages_arriving():
            assert source.poll() is None, source.communicate()[0]
            assert time.monotonic() < deadline
            time.sleep(0.005)
        names = run_names(tmpdir)
        os.killpg(receiver.pid, signal.SIGKILL)
        assert receiver.wait(timeout=30) == -signal.SIGKILL
        stdout, _ = source.communicate(timeout=120)
    assert source.returncode == 1, stdout
    result = the_result(tmp_path)
    assert result["outcome"] == "error", result["reason"]
    assert result["reason"].startswith(f"receiver {pair.destination.address}:"), result["reason"]
    [cycle] = result["cycles"]
    assert cycle["reason"].endswith(" during dump of server"), (cycle["reason"], cycle["phases"])
    kept = Path(result["artifacts"])
    assert "Dumping FAILED" in (kept / "images" / "server" / "dump.log").read_text()
    assert "Traceback" not in stdout
    nothing_left(tmpdir, names)


# A source that says hello and then holds the receiver until its standard input closes.
HOLDER = """
import sys
from harness import scenario
from harness.departure import Destination, leaving, scenario_ref
from harness.rundir import RunDir
hello = {**scenario_ref(scenario.find("dgram-echo")), "backend": "cli", "timeout": None,
         "plan": "server-first", "isolation": "none", "keep": "never", "fingerprint": True,
         "destination": sys.argv[1]}
run_dir = RunDir("holder")
try:
    with leaving(Destination.parse(sys.argv[1]), run_dir, hello):
        print("held", flush=True)
        sys.stdin.read()
finally:
    run_dir.remove()
"""


def test_a_second_source_is_told_the_receiver_is_busy_and_it_takes_the_next_run_after(
    tmp_path: Path, run_dirs_in_pytest_tmp: Path
) -> None:
    """One run at a time: while one source's run is on, another is refused at once with the
    reason, not left to time out; once that run has ended the receiver takes the next."""
    tmpdir = run_dirs_in_pytest_tmp
    out = tmp_path / "receiver.out"
    with second_host(tmpdir, out) as (pair, receiver):
        assert pair.source.netns is not None
        holder = subprocess.Popen(
            ["nsenter", f"--net={pair.source.netns}", sys.executable, "-c", HOLDER,
             pair.destination.address], cwd=ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "held\n"
        started = time.monotonic()
        busy = from_source(pair, "dgram-echo", "--backend", "cli")
        assert time.monotonic() - started < 10  # told, not timed out
        assert busy.returncode == 1, busy.stdout + busy.stderr
        assert (f"receiver {pair.destination.address}:{DEFAULT_PORT}: busy with a run from "
                f"{pair.source.address} (one run at a time)") in busy.stdout, busy.stdout
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
        after = from_source(pair, "dgram-echo", "--backend", "cli",
                            "--report", str(tmp_path / "report"))
        assert after.returncode == 0, after.stdout + after.stderr
        assert receiver.poll() is None
    said = out.read_text()
    assert f"turned away {pair.source.address}: busy" in said, said
    assert f"dgram-echo from {pair.source.address}: nothing arrived" in said  # the holder's
    assert [line for line in said.splitlines() if line.startswith("dgram-echo[page-server]")
            and " passed " in line and line.endswith(f"(from {pair.source.address})")], said
    assert the_result(tmp_path)["outcome"] == "passed"
    nothing_left(tmpdir, run_names(tmpdir, tmp_path / "report"))


def test_several_scenarios_go_to_one_receiver_one_after_another(
    tmp_path: Path, run_dirs_in_pytest_tmp: Path
) -> None:
    """A run of several scenarios: each connects as soon as the last one's verdict is out,
    while the receiver is still closing that run, and is let in."""
    tmpdir = run_dirs_in_pytest_tmp
    out = tmp_path / "receiver.out"
    with second_host(tmpdir, out) as (pair, _):
        src = from_source(pair, "dgram-echo", "stream-echo", "stream-tree", "dgram-echo",
                          "--backend", "cli", "--report", str(tmp_path / "report"))
    assert src.returncode == 0, src.stdout + src.stderr
    assert "4 of 4 scenario(s) as expected" in src.stdout
    results = json.loads((tmp_path / "report" / "results.json").read_text())["scenarios"]
    assert [(r["name"], r["outcome"]) for r in results] == [
        ("dgram-echo", "passed"), ("stream-echo", "xfailed"), ("stream-tree", "passed"),
        ("dgram-echo", "passed")]
    assert "turned away" not in out.read_text()
    nothing_left(tmpdir, run_names(tmpdir, tmp_path / "report"))
