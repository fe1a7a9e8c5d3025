"""The examples the README and docs/own-programs.md show, verbatim: if they break, the docs lie."""

from __future__ import annotations

import pytest

from harness.pytest_plugin import MigrationFixture

# Build sources are found relative to the test file.
NATIVE = "../../scenarios/native"
REPLY = r"^client: reply \d+: OK,I got it!$"


@pytest.mark.criu
def test_my_echo_pair_migrates(migration: MigrationFixture) -> None:
    server = migration.build(f"{NATIVE}/echo_server.c")  # compiled into the run directory
    client = migration.build(f"{NATIVE}/echo_client.c")
    server_sock = migration.path("server.sock")
    client_sock = migration.path("client.sock")

    migration.spawn([server, "dgram", "--socket", server_sock],
                    role="server", ready_socket=server_sock)
    migration.spawn([client, "dgram", "--socket", client_sock, "--server", server_sock],
                    role="client", ready_pattern=REPLY, progress_pattern=REPLY)

    result = migration.run()  # server-first: freeze both, dump and restore the server first
    assert result.outcome == "passed"
    assert result.criu_error is None


@pytest.mark.criu
@pytest.mark.criu_xfail(signature="Can't dump half of stream unix connection")
def test_my_stream_pair_cannot_be_split(migration: MigrationFixture) -> None:
    server = migration.build(f"{NATIVE}/echo_server.c")
    client = migration.build(f"{NATIVE}/echo_client.c")
    server_sock = migration.path("server.sock")
    client_sock = migration.path("client.sock")

    migration.spawn([server, "stream", "--socket", server_sock],
                    role="server", ready_socket=server_sock)
    migration.spawn([client, "stream", "--socket", client_sock, "--server", server_sock],
                    role="client", ready_pattern=REPLY, progress_pattern=REPLY)

    result = migration.run(criu={"dump": {"ext_unix_sk": True}})
    assert result.resumed_after_failure  # the pair kept running after the failed dump


@pytest.mark.criu
def test_my_daemon_checks_itself(migration: MigrationFixture) -> None:
    program = migration.build(f"{NATIVE}/selfcheck_daemon.c")
    pidfile, verdict = migration.path("daemon.pid"), migration.path("verdict")
    migration.spawn([program, "--pidfile", pidfile, "--result", verdict],
                    role="daemon", pidfile=pidfile)  # the launcher exits; the daemon is tracked
    migration.self_check("SIGTERM", exit_status=0, file=verdict, pattern="^PASS")
    result = migration.run(criu={"shell_job": True})  # a daemon leads no session
    assert result.outcome == "passed"
