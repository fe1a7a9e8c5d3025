"""The pytest plugin, seen from a user's test suite: pytester runs pytest on small test files.

Runs that migrate go through a subprocess: the harness makes its process a child subreaper and
handles SIGTERM, which should not leak into this test session.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
NATIVE = SCENARIOS / "native"

# The native C pair, declared through the fixture: the helper every inner test file starts with.
PAIR = f'''
import sys
import pytest

NATIVE = {str(NATIVE)!r}
REPLY = r"^client: reply \\d+: OK,I got it!$"


def echo_pair(migration, kind):
    server = migration.build(f"{{NATIVE}}/echo_server.c")
    client = migration.build(f"{{NATIVE}}/echo_client.c")
    ssock, csock = migration.path("server.sock"), migration.path("client.sock")
    migration.spawn([server, kind, "--socket", ssock], role="server", ready_socket=ssock)
    migration.spawn(
        [client, kind, "--socket", csock, "--server", ssock, "--interval", "10"],
        role="client", ready_pattern=REPLY, progress_pattern=REPLY,
    )
'''


# --- options ------------------------------------------------------------------------------------


def test_options_have_defaults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_settings(criu_settings):
            assert (criu_settings.backend, criu_settings.binary, criu_settings.keep) == (
                "rpc", None, "failed")
    """)
    pytester.runpytest().assert_outcomes(passed=1)


def test_options_are_parsed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_settings(criu_settings):
            assert criu_settings.backend == "cli"
            assert criu_settings.binary == "/opt/criu/sbin/criu"
            assert criu_settings.keep == "never"
    """)
    result = pytester.runpytest(
        "--criu-backend=cli", "--criu-binary", "/opt/criu/sbin/criu", "--keep-artifacts=never"
    )
    result.assert_outcomes(passed=1)


def test_a_bad_option_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--keep-artifacts=sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--keep-artifacts: invalid choice: 'sometimes'*"])
    result = pytester.runpytest("--criu-backend=ssh")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_without_criu_a_migration_is_skipped_with_the_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile("""
        import pytest

        def test_uses_fixture(migration):
            raise AssertionError("not reached: no CRIU")

        @pytest.mark.criu
        def test_marked():
            raise AssertionError("not reached: no CRIU")
    """)
    result = pytester.runpytest("-rs", "--criu-binary=/nonexistent/criu")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*criu binary not found: '/nonexistent/criu'*"])


def test_without_criu_under_ci_a_migration_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile("""
        def test_uses_fixture(migration):
            raise AssertionError("not reached: no CRIU")
    """)
    result = pytester.runpytest("--criu-binary=/nonexistent/criu")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*CI=true and CRIU is not usable: criu binary not found*"])


# --- the migration fixture ----------------------------------------------------------------------


@pytest.mark.criu
def test_a_user_test_migrates_its_own_programs(
    pytester: pytest.Pytester, backend_name: str
) -> None:
    pytester.makepyfile(PAIR + """

def test_native_pair(migration):
    echo_pair(migration, "dgram")
    result = migration.run()
    assert result.outcome == "passed" and result.criu_error is None
    [cycle] = result.cycles
    assert [c.action for c in cycle.calls] == ["dump", "dump", "restore", "restore"]
    assert migration.processes[1].stdout.read_text().count("OK,I got it!") >= 40


def test_python_pair_twice(migration):
    events = migration.path("client.events")
    ssock, csock = migration.path("s.sock"), migration.path("c.sock")
    dgram = [sys.executable, "-m", "harness.workloads.dgram"]
    migration.spawn([*dgram, "server", "--socket", ssock], role="server", ready_socket=ssock)
    migration.spawn(
        [*dgram, "client", "--socket", csock, "--server", ssock, "--events", events,
         "--interval", "0.01"],
        role="client", ready_events=events, progress_events=events,
    )
    result = migration.run(iterations=2)
    assert result.outcome == "passed"
    assert len(result.cycles) == 2 and result.messages_lost == 0 and result.answered > 40
""")
    result = pytester.runpytest_subprocess(
        f"--criu-backend={backend_name}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)
    # A passing test leaves no run directory behind (--keep-artifacts=failed).
    assert "artifacts" not in result.stdout.str()


@pytest.mark.criu
def test_the_fixture_isolates_by_option_and_by_argument(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PAIR + """

def test_by_option(migration, criu_settings):
    assert criu_settings.isolation == "ns"
    echo_pair(migration, "dgram")
    result = migration.run()
    assert result.outcome == "passed" and result.isolation == "ns"


def test_by_argument(migration):
    echo_pair(migration, "dgram")
    result = migration.run(isolation="none")
    assert result.outcome == "passed" and result.isolation == "none"
""")
    result = pytester.runpytest_subprocess("--criu-isolation=ns", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


@pytest.mark.criu
def test_the_fixture_and_scenario_files_under_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(PAIR + """

@pytest.mark.parametrize("n", range(3))
def test_pairs_side_by_side(migration, n):
    echo_pair(migration, "dgram")
    result = migration.run(isolation="ns")
    assert result.outcome == "passed"
""")
    (pytester.path / "dgram-echo.toml").write_text((SCENARIOS / "dgram-echo.toml").read_text())
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    # Three fixture tests and the scenario file, in two worker processes.
    result.assert_outcomes(passed=4)


@pytest.mark.criu
def test_criu_xfail_is_strict(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PAIR + """
HALF = "Can't dump half of stream unix connection"


@pytest.mark.criu_xfail(signature=HALF)
def test_stream_pair_fails_as_expected(migration):
    echo_pair(migration, "stream")
    result = migration.run(criu={"dump": {"ext_unix_sk": True}})
    assert HALF in result.criu_error and result.resumed_after_failure


@pytest.mark.criu_xfail(signature=HALF)
def test_dgram_pair_migrates_so_the_test_fails(migration):
    echo_pair(migration, "dgram")
    migration.run()


@pytest.mark.criu_xfail(signature="a signature CRIU never prints")
def test_another_failure_is_not_the_expected_one(migration):
    echo_pair(migration, "stream")
    migration.run(criu={"dump": {"ext_unix_sk": True}})
""")
    result = pytester.runpytest_subprocess("-ra", "-p", "no:cacheprovider")
    result.assert_outcomes(xfailed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*_ test_dgram_pair_migrates_so_the_test_fails _*",
        "[[]XPASS(strict)[]] expected criu dump to fail with \"Can't dump half*\", "
        "but the migration succeeded",
        "*_ test_another_failure_is_not_the_expected_one _*",
        "migration failed: criu dump failed: *Can't dump half of stream unix connection* "
        "(expected criu dump to fail with 'a signature CRIU never prints')",
        "XFAIL *test_stream_pair_fails_as_expected - criu dump failed as expected: "
        "unix: Can't dump half of stream unix connection*",
    ])
    _remove_artifacts(result.stdout.str())


def test_criu_xfail_needs_a_migration_and_a_signature(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.criu_xfail(signature="Can't dump half of stream unix connection")
        def test_runs_no_migration():
            pass

        @pytest.mark.criu_xfail(action="dump")
        def test_has_no_signature():
            pass
    """)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines_random([
        "criu_xfail: the test ran no migration (call migration.run())",
        "*UsageError: criu_xfail needs signature='...'*",
    ])


@pytest.mark.criu
def test_a_failing_migration_reports_signature_logs_and_stats(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PAIR + """

def test_stream_pair(migration):
    echo_pair(migration, "stream")
    migration.run(criu={"dump": {"ext_unix_sk": True}})
""")
    result = pytester.runpytest_subprocess("--junitxml=junit.xml", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*- criu migration -*",
        "outcome:  failed (expected: migrates); backend rpc, plan server-first*",
        "criu:     Error (criu/sk-unix.c:*): unix: Can't dump half of stream unix connection*",
        "stats:    *",
        "cycle 1: failed: freeze server *, dump server *",
        "criu logs:",
        "  dump of server: /*/images/server/dump.log",
        "artifacts: /*",
    ])
    props = {
        p.get("name", ""): p.get("value", "")
        for p in ET.parse(pytester.path / "junit.xml").iter("property")
    }
    assert props["criu_outcome"] == "failed" and props["criu_backend"] == "rpc"
    assert "Can't dump half of stream unix connection" in props["criu_error"]
    assert props["criu_logs"].startswith("dump of server: /")
    artifacts = Path(props["criu_artifacts"])
    assert (artifacts / "images" / "server" / "dump.log").is_file()  # kept: the test failed
    shutil.rmtree(artifacts)


# --- scenario files -----------------------------------------------------------------------------


def _scenario_dir(pytester: pytest.Pytester) -> Path:
    """The native scenarios and their sources, a pyproject that is no scenario, a broken one."""
    for name in ("native-dgram.toml", "native-stream.toml"):
        shutil.copy(SCENARIOS / name, pytester.path / name)
    shutil.copytree(NATIVE, pytester.path / "native")
    (pytester.path / "pyproject.toml").write_text('[project]\nname = "mine"\n')
    (pytester.path / "broken.toml").write_text(
        'name = "broken"\n[[process]]\nrole = "server"\n[expect]\noutcome = "maybe"\n'
    )
    return pytester.path


def test_scenario_files_are_collected(pytester: pytest.Pytester) -> None:
    _scenario_dir(pytester)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines_random([
        "native-dgram.toml::native-dgram",
        "native-stream.toml::native-stream",
        "*broken.toml*",
        "*broken.toml:2: process[[]0[]].argv: missing (required)*",
        "*broken.toml:5: expect.outcome: must be 'migrates', 'fails' or 'breaks', not 'maybe'*",
    ])
    assert "pyproject" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error stops the run


def test_a_scenario_file_expecting_a_failure_is_marked_criu_xfail(
    pytester: pytest.Pytester,
) -> None:
    _scenario_dir(pytester)
    (pytester.path / "broken.toml").unlink()
    result = pytester.runpytest("--collect-only", "-q", "-m", "criu_xfail")
    result.stdout.fnmatch_lines(["native-stream.toml::native-stream", "*1/2 tests collected*"])


@pytest.mark.criu
def test_scenario_files_run_as_tests(pytester: pytest.Pytester, backend_name: str) -> None:
    _scenario_dir(pytester)
    (pytester.path / "broken.toml").unlink()
    result = pytester.runpytest_subprocess(
        "-rx", "-m", "criu", f"--criu-backend={backend_name}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1, xfailed=1)
    result.stdout.fnmatch_lines([
        "XFAIL native-stream.toml::native-stream - criu dump failed as expected: "
        "unix: Can't dump half of stream unix connection*",
    ])


@pytest.mark.criu
def test_a_failing_scenario_file_says_why(pytester: pytest.Pytester) -> None:
    _scenario_dir(pytester)
    (pytester.path / "broken.toml").unlink()
    text = (pytester.path / "native-stream.toml").read_text()
    # The same stream pair, claimed to migrate: the dump fails, and so does the test.
    (pytester.path / "native-stream.toml").write_text(
        text.replace('outcome = "fails"', 'outcome = "migrates"')
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "native-stream.toml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "native-stream: failed: criu dump failed: *Can't dump half of stream unix connection*",
        "*- criu migration -*",
        "  dump of server: /*/images/server/dump.log",
    ])
    _remove_artifacts(result.stdout.str())


def _remove_artifacts(output: str) -> None:
    """Failing inner tests keep their run directories: these failures were the point."""
    for line in output.splitlines():
        if line.startswith("artifacts: /"):
            path = Path(line.removeprefix("artifacts: ").strip())
            if path.name.startswith("criu-harness-") and path.is_dir():
                shutil.rmtree(path)
