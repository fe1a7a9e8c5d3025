"""Migrations measured and verified as a migration engineer would, on real CRIU: repeated
cycles, every plan, the stream pair in one tree, and a visible-state change caught."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from harness import cli, scenario
from harness.criu import CriuOptions, get_backend
from harness.runner import ScenarioRun
from harness.scenario import CriuSpec

pytestmark = pytest.mark.criu


def test_every_cycle_is_verified_and_measured(backend_name: str) -> None:
    result = ScenarioRun(scenario.find("dgram-echo"), get_backend(backend_name), iterations=5).run()
    assert result.outcome == "passed", result.reason
    assert [c.outcome for c in result.cycles] == ["passed"] * 5
    for cycle in result.cycles:
        assert cycle.downtime_ms is not None and cycle.downtime_ms > 0
        assert cycle.differences == []
        assert set(cycle.stats) == {"server", "client"}
        for role, stats in cycle.stats.items():
            criu = stats.criu
            assert criu is not None and criu.frozen_ms and criu.restore_ms, role
            assert criu.pages_written and criu.pages_written == criu.pages_restored, role
            assert stats.image_bytes > criu.pages_written * 4096 - 1, role
            for step in ("freeze", "quiesce" if role == "server" else "freeze", "inspect", "dump",
                         "reap", "restore", "resume"):
                assert stats.harness[f"{step}_ms"] >= 0, (role, step)
    summary = result.downtime_summary
    assert summary is not None and summary.cycles == 5
    downtimes = sorted(c.downtime_ms for c in result.cycles if c.downtime_ms is not None)
    assert (summary.min_ms, summary.max_ms) == (downtimes[0], downtimes[-1])
    assert summary.min_ms <= summary.median_ms <= summary.p95_ms <= summary.max_ms
    assert summary.messages_lost == 0 and summary.client_errors == 0
    assert result.messages_lost == 0 and result.client_errors == 0


def test_plan_all_meets_each_plans_expectations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["run", "dgram-echo", "--plan", "all", "--report", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    data = json.loads((tmp_path / "results.json").read_text())
    by_plan = {s["plan"]: s for s in data["scenarios"]}
    assert set(by_plan) == {"server-first", "server-first-overlapped", "client-first",
                            "server-running", "no-freeze"}
    assert all(s["outcome"] == "passed" for s in by_plan.values()), out
    for lossless in ("server-first", "server-first-overlapped", "server-running"):
        assert by_plan[lossless]["messages_lost"] == 0
        assert by_plan[lossless]["client_errors"] == 0
    # The client restored first sends into the void until the server is back.
    assert 1 <= by_plan["client-first"]["client_errors"] <= 15
    # Without freezing, the request sent while CRIU dumps the server is lost (the scenario's
    # bounds leave room for a loaded machine).
    assert 1 <= by_plan["no-freeze"]["messages_lost"] <= 2
    assert by_plan["no-freeze"]["client_errors"] <= 1
    lines = [line for line in out.splitlines() if line.startswith("dgram-echo")]
    assert len(lines) == 5
    # Side by side: the columns line up whatever the plan's name.
    assert len({line.index(" lost ") for line in lines}) == 1


def test_stream_tree_migrates_beside_stream_echo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], backend_name: str
) -> None:
    status = cli.main(["run", "--backend", backend_name, "stream-echo", "stream-tree",
                       "--report", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    echo, tree = json.loads((tmp_path / "results.json").read_text())["scenarios"]
    assert (echo["name"], echo["outcome"]) == ("stream-echo", "xfailed")
    assert "Can't dump half of stream unix connection" in echo["criu_error"]
    assert (tree["name"], tree["outcome"]) == ("stream-tree", "passed"), tree["reason"]
    assert tree["messages_lost"] == 0 and tree["client_errors"] == 0
    [cycle] = tree["cycles"]
    # The one tree: the parent, the server and the client, each fingerprinted.
    assert {c["action"] for c in cycle["calls"]} == {"dump", "restore"}
    assert len(cycle["calls"]) == 2
    # What differs is only what the scenario documents (the pair's names), nothing else.
    assert all(d["allowed"] for d in cycle["differences"])
    assert {d["field"].split()[0] for d in cycle["differences"]} <= {"fd"}


def test_default_run_lists_stream_tree_after_stream_echo() -> None:
    names = list(cli.DEFAULT_SCENARIOS)
    assert names.index("stream-tree") == names.index("stream-echo") + 1


@dataclass(frozen=True)
class _Redirect(CriuSpec):
    """Restores the server with its stdout replaced (--inherit-fd) by another file."""

    fd: int = -1

    def options(self, action: str, images_dir: Path, log_file: str) -> CriuOptions:
        opts = super().options(action, images_dir, log_file)
        if action != "restore" or images_dir.name != "server":
            return opts
        run_dir = images_dir.parent.parent  # RUN/images/server with one cycle
        # CRIU's key for a regular file is its path without the leading slash.
        key = str(run_dir / "server.stdout").lstrip("/")
        return replace(opts, inherit_fds=((key, self.fd),))


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    path = tmp_path / "elsewhere.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    yield path, fd
    os.close(fd)


def test_a_visible_state_change_fails_the_cycle_with_the_field_named(
    elsewhere: tuple[Path, int], backend_name: str
) -> None:
    path, fd = elsewhere
    dgram = scenario.find("dgram-echo")
    redirected = replace(dgram, criu=_Redirect(**vars(dgram.criu), fd=fd))
    result = ScenarioRun(redirected, get_backend(backend_name), keep="never").run()
    # CRIU did what it was told and the echo loop goes on: only the fingerprint sees it.
    assert result.outcome == "failed"
    assert result.messages_lost == 0
    [cycle] = result.cycles
    [d] = cycle.differences
    assert (d.field, d.allowed) == ("fd 1", False)
    assert d.process.startswith("server")
    assert d.before.startswith("file ") and "server.stdout" in d.before
    assert d.after.startswith(f"file {path} ")
    assert "visible state changed" in result.reason and "fd 1:" in result.reason
