"""The migration fixture's arguments: built into a scenario by the scenario files' own rules,
each mistake a UsageError naming the argument. No CRIU: nothing here runs a migration."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from harness.criu import Backend
from harness.errors import UsageError
from harness.pytest_plugin import CriuSettings, MigrationFixture
from harness.readiness import EventsReady, LogReady, SocketReady, StartedReady
from harness.scenario import CriuSpec, Verify


@pytest.fixture
def migration() -> Iterator[MigrationFixture]:
    fixture = MigrationFixture("args", Path(__file__), CriuSettings(), cast(Backend, None))
    yield fixture
    fixture._finish(test_failed=False)


def test_arguments_build_what_a_scenario_file_would(migration: MigrationFixture) -> None:
    sock, events = migration.path("s.sock"), migration.path("c.events")
    migration.spawn(["server"], role="server", ready_socket=sock)
    migration.spawn(["client"], role="client", ready_pattern="reply", ready_timeout=3.0,
                    progress_pattern="reply", env={"A": "1"})
    migration.spawn(["other"], role="other", ready_events=events)
    migration.spawn(["last"], role="last")
    s = migration.scenario(min_progress=5, criu={"shell_job": True, "dump": {"ext_unix_sk": True}})
    stdout = str(migration.run_dir / "client.stdout")
    assert [p.ready for p in s.processes] == [
        SocketReady(sock), LogReady(stdout, "reply", timeout=3.0), EventsReady(events),
        StartedReady(),
    ]
    assert s.processes[1].env == {"A": "1"}
    assert s.verify == Verify(log=stdout, pattern="reply", min_progress=5)
    assert s.criu == CriuSpec(common={"shell_job": True}, dump={"ext_unix_sk": True})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ready_socket": "/s", "ready_pattern": "x"}, "ready: must name exactly one of "
         "ready_socket, ready_pattern, ready_events, ready_delay, pidfile"),
        ({"ready_log": "/l"}, "ready_pattern: missing (required with ready_log)"),
        ({"ready_pattern": "("}, "ready_pattern: bad regular expression: *"),
        ({"ready_delay": 0}, "ready_delay: must be greater than 0, not 0"),
        ({"ready_socket": "/s", "ready_timeout": -1}, "ready_timeout: must be greater than 0, *"),
        ({"progress_pattern": "x", "progress_events": "/e"}, "progress: must name exactly one of "
         "progress_events (an echo event log), progress_pattern (lines of a log) or "
         "self_check() (a program that checks itself)"),
        ({"progress_log": "/l"}, "progress_pattern: missing (required with progress_log)"),
        ({"progress_events": "/e", "env": {"A": 1}}, "env['A']: must be a string, not an integer"),
        ({"argv": []}, "argv: must not be empty"),
    ],
)
def test_a_bad_spawn_names_the_argument(
    migration: MigrationFixture, kwargs: dict[str, Any], message: str
) -> None:
    argv = kwargs.pop("argv", ["prog"])
    with pytest.raises(UsageError) as info:
        migration.spawn(argv, role="client", **kwargs)
    assert info.match(f"^spawn\\(role='client'\\): {_glob(message)}$")
    assert not migration.processes  # nothing declared


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_progress": 0}, "min_progress: must be greater than 0, not 0"),
        ({"deadline": -1.0}, "deadline: must be greater than 0, not -1.0"),
        ({"criu": {"dump": {"bogus": True}}},
         "criu['dump']['bogus']: unknown key (expected one of: shell_job, *)"),
        ({"criu": {"network_lock": "x"}},
         "criu['network_lock']: must be one of iptables, nftables, skip"),
        ({"criu": {"restore": True}}, "criu['restore']: must be a table, not a boolean"),
    ],
)
def test_a_bad_run_names_the_argument(
    migration: MigrationFixture, kwargs: dict[str, Any], message: str
) -> None:
    migration.spawn(["prog"], role="client", progress_events="/e")
    with pytest.raises(UsageError) as info:
        migration.scenario(**kwargs)
    assert info.match(f"^run\\(\\): {_glob(message)}$")


def test_the_order_of_calls_is_checked(migration: MigrationFixture) -> None:
    with pytest.raises(UsageError, match=r"no process to migrate"):
        migration.scenario()
    migration.spawn(["server"], role="server")
    with pytest.raises(UsageError, match=r"no way to see progress"):
        migration.scenario()
    with pytest.raises(UsageError, match=r"^spawn\(\): role 'server' is used twice$"):
        migration.spawn(["server"], role="server")
    migration.spawn(["client"], role="client", progress_events="/e")
    with pytest.raises(UsageError, match=r"progress is already watched on 'client'"):
        migration.spawn(["third"], role="third", progress_events="/e")


def _glob(message: str) -> str:
    """A message with * for any text, as a regular expression."""
    return ".*".join(re.escape(part) for part in message.split("*"))
