"""Readiness: each kind's probe on real files and sockets, waiting, and the one exactly-one rule."""

from __future__ import annotations

import json
import socket
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import readiness, scenario
from harness.errors import WorkloadError
from harness.problems import Keys, Problems
from harness.readiness import (
    DelayReady,
    EventsReady,
    LogReady,
    SocketReady,
    StartedReady,
)


@pytest.fixture
def render(tmp_path: Path) -> readiness.Render:
    return lambda text: text.replace("{run_dir}", str(tmp_path))


# --- the probes ---------------------------------------------------------------------------------


@pytest.fixture
def bound(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        yield path


def test_socket_ready_when_a_socket_is_bound(
    tmp_path: Path, render: readiness.Render, bound: Path
) -> None:
    assert SocketReady("{run_dir}/s.sock").probe(render, 0.0)
    assert not SocketReady("{run_dir}/missing.sock").probe(render, 0.0)
    (tmp_path / "plain").write_text("")
    assert not SocketReady("{run_dir}/plain").probe(render, 0.0)  # a file is no socket
    assert not SocketReady("{run_dir}/plain/below").probe(render, 0.0)


def test_log_ready_when_a_line_matches(tmp_path: Path, render: readiness.Render) -> None:
    ready = LogReady("{run_dir}/out", r"^reply \d+$")
    assert not ready.probe(render, 0.0)  # no log yet
    (tmp_path / "out").write_text("starting\nreply x\n")
    assert not ready.probe(render, 0.0)
    (tmp_path / "out").write_text("starting\nreply 1\n")
    assert ready.probe(render, 0.0)


def test_events_ready_after_an_answered_round_trip(tmp_path: Path, render: readiness.Render) -> None:
    ready = EventsReady("{run_dir}/client.events")
    assert not ready.probe(render, 0.0)
    events = tmp_path / "client.events"
    events.write_text(json.dumps({"event": "sent", "seq": 1, "ts": 1.0}) + "\n")
    assert not ready.probe(render, 0.0)
    with events.open("a") as log:
        log.write(json.dumps({"event": "received", "seq": 1, "ts": 1.1}) + "\n")
    assert ready.probe(render, 0.0)


def test_delay_ready_once_the_delay_has_passed(render: readiness.Render) -> None:
    ready = DelayReady(0.5, timeout=2.0)
    assert not ready.probe(render, 0.49)
    assert ready.probe(render, 0.5)
    assert ready.deadline == 2.5  # the delay is waited out whatever the timeout


def test_started_is_ready_at_once(render: readiness.Render) -> None:
    assert StartedReady().probe(render, 0.0)


# --- waiting ------------------------------------------------------------------------------------


@dataclass
class Process:
    """What waiting looks at: a name, whether it runs, its stderr's tail."""

    name: str = "server"
    running: bool = True

    def alive(self) -> bool:
        return self.running

    def tail(self, lines: int = 5) -> str:
        return "bind: Address already in use"


def test_wait_returns_once_ready(render: readiness.Render, bound: Path) -> None:
    SocketReady("{run_dir}/s.sock", timeout=1.0).wait(Process(), render)
    DelayReady(0.05).wait(Process(), render)


def test_wait_says_when_the_process_is_never_ready(render: readiness.Render) -> None:
    with pytest.raises(WorkloadError, match=r"^server not ready within 0.1 s: bind: Address"):
        SocketReady("{run_dir}/never.sock", timeout=0.1).wait(Process(), render)


@pytest.mark.parametrize("ready", [StartedReady(), DelayReady(5.0), SocketReady("/nowhere")])
def test_wait_stops_when_the_process_ends(
    render: readiness.Render, ready: readiness.Readiness
) -> None:
    with pytest.raises(WorkloadError, match=r"^server exited at start: bind: Address"):
        ready.wait(Process(running=False), render)


# --- the exactly-one rule -----------------------------------------------------------------------


def build(values: dict[str, object]) -> tuple[readiness.Readiness | None, list[tuple[Keys, str]]]:
    problems = Problems()
    ready = readiness.from_keys(values, problems)
    return ready, [(p.keys, p.why) for p in problems.found]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"socket": "/s"}, SocketReady("/s")),
        ({"log": "/l", "pattern": "x", "timeout": 3}, LogReady("/l", "x", timeout=3.0)),
        ({"events": "/e"}, EventsReady("/e")),
        ({"delay": 1}, DelayReady(1.0)),
    ],
)
def test_one_kind_builds_its_class(values: dict[str, object], expected: readiness.Readiness) -> None:
    assert build(values) == (expected, [])


@pytest.mark.parametrize(
    "values", [{}, {"timeout": 5.0}, {"socket": "/s", "events": "/e"}, {"pattern": "x"}]
)
def test_none_or_several_kinds_is_one_problem(values: dict[str, object]) -> None:
    assert build(values) == (None, [((), "must name exactly one of socket, log, events, delay, pidfile")])


def test_each_kind_checks_its_own_keys() -> None:
    _, found = build({"log": "/l", "timeout": 0})
    assert found == [(("pattern",), "missing (required with log)"),
                     (("timeout",), "must be greater than 0, not 0")]
    _, found = build({"log": "/l", "pattern": "("})
    assert [(keys, why.split(":")[0]) for keys, why in found] == [
        (("pattern",), "bad regular expression")
    ]
    _, found = build({"delay": -1})
    assert found == [(("delay",), "must be greater than 0, not -1")]


def test_every_key_of_every_kind_is_known() -> None:
    assert readiness.KEYS == {"socket": str, "log": str, "pattern": str, "events": str,
                              "delay": float, "pidfile": str, "timeout": float}


def test_messages_name_keys_as_the_caller_does() -> None:
    problems = Problems(lambda keys: "ready_" + str(keys[-1]))
    readiness.from_keys({"log": "/l", "delay": 1.0}, problems)
    assert [p.why for p in problems.found] == [
        "must name exactly one of ready_socket, ready_log, ready_events, ready_delay, ready_pidfile",
        "missing (required with ready_log)",
    ]


def test_a_scenario_file_gets_the_rule_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "two.toml"
    path.write_text(textwrap.dedent("""\
        name = "two"
        [[process]]
        role = "server"
        argv = ["./server"]
        ready = { socket = "{run_dir}/s.sock", delay = 1 }
        [expect]
        outcome = "migrates"
        [verify]
        events = "{run_dir}/client.events"
    """))
    with pytest.raises(scenario.ScenarioError) as info:
        scenario.load(path)
    assert info.value.problems == [
        f"{path}:5: process[0].ready: must name exactly one of socket, log, events, delay, pidfile"
    ]
