"""What both CRIU backends share, without CRIU: the binary check, the deadline of a CRIU
process, CRIU's environment, and the error of a CRIU that was killed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from harness.criu.backend import Backend, CriuBinary, CriuCall
from harness.criu.log import last_message
from harness.criu.options import CriuOptions
from harness.criu.process import DEFAULT_TIMEOUT_S, CriuProcess, criu_env, env_record
from harness.criu.rpc import rpc_config
from harness.errors import UsageError


def script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_a_binary_must_answer_version_as_criu(tmp_path: Path) -> None:
    fake = script(tmp_path / "criu", 'echo "Version: 4.2.1"; echo "GitID: v4.2.1"')
    criu = CriuBinary.find(str(fake))
    assert criu.version() == "4.2.1"
    for body, said in [("exit 1", "nothing"), ('echo "false (GNU coreutils) 9.1"', "coreutils"),
                       ('echo "criu unknown"', "criu unknown")]:
        with pytest.raises(UsageError, match=f"not CRIU: '--version' printed .*{said}.*Version: X.Y"):
            CriuBinary.find(str(script(tmp_path / "notcriu", body)))
    with pytest.raises(UsageError, match="/bin/false: not CRIU"):
        CriuBinary.find("/bin/false")
    (tmp_path / "noexec").write_text("")
    with pytest.raises(UsageError, match="not found"):  # which() wants an executable
        CriuBinary.find(str(tmp_path / "noexec"))


def test_extra_args_rpc_cannot_pass_are_a_usage_error() -> None:
    assert rpc_config(("--file-locks", "--ghost-limit", "1M")) == "file-locks\nghost-limit 1M\n"
    with pytest.raises(UsageError, match="extra_args.*'-v'"):
        rpc_config(("-v",))


def test_a_criu_past_its_deadline_is_killed_with_its_group(tmp_path: Path) -> None:
    opts = CriuOptions(tmp_path, timeout=0.5)
    started = time.monotonic()
    with (tmp_path / "out").open("wb") as out:
        # A shell with a child: the whole process group goes.
        criu = CriuProcess(["sh", "-c", "sleep 30 & wait"], out, opts)
        pid = criu.proc.pid
        rc = criu.wait()
    assert criu.timed_out and rc == -signal.SIGKILL
    assert time.monotonic() - started < 5
    alive = [p for p in psutil.process_iter(["status"])
             if _pgid(p.pid) == pid and p.info["status"] != psutil.STATUS_ZOMBIE]
    assert alive == []


def test_the_watchdog_ends_a_blocking_wait_on_criu(tmp_path: Path) -> None:
    opts = CriuOptions(tmp_path, timeout=0.3)
    with (tmp_path / "out").open("wb") as out:
        criu = CriuProcess(["sleep", "30"], out, opts)
    r, w = os.pipe()
    try:
        with criu.watchdog():
            # Stands for pycriu's recv: it returns once the watchdog has killed CRIU.
            while criu.proc.poll() is None:
                time.sleep(0.01)
    finally:
        os.close(r)
        os.close(w)
    assert criu.timed_out and criu.wait() == -signal.SIGKILL


def test_a_criu_in_time_is_left_alone(tmp_path: Path) -> None:
    with (tmp_path / "out").open("wb") as out:
        criu = CriuProcess(["true"], out, CriuOptions(tmp_path))
        assert criu.timeout == DEFAULT_TIMEOUT_S
        with criu.watchdog():
            pass
        assert criu.wait() == 0 and not criu.timed_out


def test_a_criu_that_ends_is_seen_ended_at_once(tmp_path: Path) -> None:
    # Popen.wait(timeout) polls with sleeps growing to 50 ms: a 70 ms CRIU would be seen done
    # after 113 ms. The blocking wait (the watchdog keeps the deadline) sees it at once.
    with (tmp_path / "out").open("wb") as out:
        started = time.monotonic()
        criu = CriuProcess(["sleep", "0.07"], out, CriuOptions(tmp_path, timeout=10))
        assert criu.wait() == 0
    assert time.monotonic() - started < 0.11


def test_criu_gets_a_fault_only_when_asked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CRIU_FAULT", "3")  # inherited: no call record would show it
    assert "CRIU_FAULT" not in criu_env(CriuOptions(tmp_path))
    assert env_record(CriuOptions(tmp_path)) == {}
    opts = CriuOptions(tmp_path, fault=1)
    assert criu_env(opts)["CRIU_FAULT"] == "1"
    assert env_record(opts) == {"env": {"CRIU_FAULT": "1"}}
    with (tmp_path / "out").open("wb") as out:
        CriuProcess(["sh", "-c", 'echo "fault=$CRIU_FAULT"'], out, opts).wait()
    assert (tmp_path / "out").read_text() == "fault=1\n"


class _Fake(Backend):
    """Only _failure and effective are under test here."""

    name = "fake"

    def __init__(self, timeout: float | None = None, fault: int | None = None) -> None:
        self.timeout, self.fault = timeout, fault

    def _dump(self, pid: int, opts: CriuOptions, call: CriuCall) -> None: ...

    def _restore(self, opts: CriuOptions, call: CriuCall) -> int:
        return 0

    def describe(self, action: str, opts: CriuOptions, pid: int | None) -> dict[str, object]:
        return {}


def _call(log: Path) -> CriuCall:
    return CriuCall("dump", "fake", 42, {}, {}, log, started=0.0)


def test_killed_and_timed_out_criu_get_a_signature(tmp_path: Path) -> None:
    log = tmp_path / "dump.log"
    log.write_text(
        "(00.000123) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: x\n"
        "(00.060406) Parasite 17391 has been switched to daemon mode\n"
        "(00.060407) fault: CRIU sudden detach\n"
        "pie: 17391: Trimmed message received (12/0)\n"
    )
    assert last_message(log) == "fault: CRIU sudden detach"
    killed = Backend._failure(_call(log), returncode=-9)
    assert killed.signal == 9 and killed.signature == "killed by SIGKILL after: fault: CRIU sudden detach"
    late = Backend._failure(_call(log), returncode=-9, timed_out=2.0)
    assert late.signature == "timed out after 2 s" and late.signal == signal.SIGKILL
    assert "timed out after 2 s" in str(late) and late.call is not None and late.call.error


def test_the_backend_timeout_and_fault_override_the_scenario(tmp_path: Path) -> None:
    opts = CriuOptions(tmp_path, timeout=5, fault=3)
    assert (_Fake().effective(opts).timeout, _Fake().effective(opts).fault) == (5, 3)
    assert _Fake(timeout=1, fault=1).effective(opts).timeout == 1
    assert _Fake(timeout=1, fault=1).effective(opts).fault == 1
    assert _Fake().effective(CriuOptions(tmp_path)).timeout == DEFAULT_TIMEOUT_S
    assert _Fake().effective(CriuOptions(tmp_path)).fault is None
    recorded = _Fake().effective(opts).to_json()
    assert (recorded["timeout"], recorded["fault"]) == (5, 3)
    assert CriuOptions.from_json(recorded) == _Fake().effective(opts)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None
