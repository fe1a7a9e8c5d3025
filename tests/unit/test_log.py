"""Signature extraction from CRIU logs."""

from __future__ import annotations

from pathlib import Path

from harness.criu.log import error_lines, log_signature, message, signature

RLIMIT = "(00.000123) Error (criu/util.c:1234): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted"
HALF = (
    "(00.041503) Error (criu/sk-unix.c:881): unix: Can't dump half of stream unix connection. "
    "name: /tmp/x/server.sock; peer name: /tmp/x/client.sock"
)
FAILED = "(00.041900) Error (criu/cr-dump.c:2100): Dumping FAILED."


def test_harmless_rlimit_line_is_not_a_signature() -> None:
    assert signature([RLIMIT, "(00.1) some info"]) is None


def test_first_cause_wins_over_consequences() -> None:
    lines = [RLIMIT, "(00.02) Warn (criu/x.c:1): something", HALF, FAILED]
    assert signature(lines) == HALF.split(") ", 1)[1]


def test_consequence_only_is_used_when_nothing_else() -> None:
    assert signature([RLIMIT, FAILED]) == "Error (criu/cr-dump.c:2100): Dumping FAILED."


def test_restore_lines_with_pid_prefix() -> None:
    line = "(00.123456)   4242: Error (criu/cr-restore.c:1500): Can't fork for 4242: File exists"
    assert error_lines([line]) == ["Error (criu/cr-restore.c:1500): Can't fork for 4242: File exists"]


def test_message_drops_source_location() -> None:
    assert message("Error (criu/sk-unix.c:881): unix: Can't dump half") == "unix: Can't dump half"


def test_log_signature_reads_file(tmp_path: Path) -> None:
    log = tmp_path / "dump.log"
    log.write_text("\n".join([RLIMIT, HALF, FAILED]) + "\n")
    sig = log_signature(log)
    assert sig is not None and "Can't dump half of stream unix connection" in sig
    assert log_signature(tmp_path / "missing.log") is None
