"""Programs as people have them, through the fixture: a C daemon that double-forks, writes a
pidfile and checks itself after SIGTERM, declared in a user's test (run by pytester)."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

pytest_plugins = ["pytester"]

DAEMON = Path(__file__).resolve().parents[2] / "scenarios" / "native" / "selfcheck_daemon.c"


def test_a_daemon_that_checks_itself_migrates_from_the_fixture(
    pytester: pytest.Pytester, backend_name: str
) -> None:
    pytester.makepyfile(f'''
def test_my_daemon(migration):
    program = migration.build({str(DAEMON)!r})
    pidfile, verdict = migration.path("daemon.pid"), migration.path("verdict")
    migration.spawn([program, "--pidfile", pidfile, "--result", verdict],
                    role="daemon", pidfile=pidfile)
    migration.self_check("SIGTERM", exit_status=0, file=verdict, pattern="^PASS")
    result = migration.run(iterations=2, criu={{"shell_job": True}})
    assert result.outcome == "passed" and "own check passed" in result.reason
    with open(verdict) as f:
        assert f.read().startswith("PASS")
''')
    result = pytester.runpytest_subprocess(f"--criu-backend={backend_name}", "-p",
                                           "no:cacheprovider")
    result.assert_outcomes(passed=1)
    # Nothing of it is left: not the daemon, not its helper (in a session of its own).
    assert not [p for p in psutil.process_iter(["cmdline"])
                if str(pytester.path) in " ".join(p.info["cmdline"] or [])
                and "selfcheck_daemon" in " ".join(p.info["cmdline"] or [])]


def test_self_check_arguments_are_checked_where_given(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
import pytest
from harness.errors import UsageError

def test_bad(migration):
    with pytest.raises(UsageError, match="not a signal name: 'TERM'"):
        migration.self_check("TERM", exit_status=0)
    with pytest.raises(UsageError, match="signal needs exit_status and/or file"):
        migration.self_check("SIGTERM")
''')
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
