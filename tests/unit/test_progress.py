"""Progress kinds: each says where to count from after a migration and what accounting it has."""

from __future__ import annotations

import json
from pathlib import Path

from harness.scenario import Verify
from harness.verification import EventProgress, LogProgress


def test_event_progress_counts_round_trips_after_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "client.events"
    lines = [{"event": "sent", "seq": 1, "ts": 10.0}, {"event": "received", "seq": 1, "ts": 10.5}]
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    progress = EventProgress(path)
    assert progress.resume_mark(10.2) == 10.2  # round trips carry their time
    assert progress.count_since(progress.resume_mark(10.2)) == 1
    assert progress.events() == lines  # the event log: message accounting


def test_log_progress_counts_lines_written_after_now(tmp_path: Path) -> None:
    path = tmp_path / "client.stdout"
    path.write_text("reply 1\nreply 2\n")
    progress = LogProgress(path, r"^reply \d+$")
    mark = progress.resume_mark(0.0)  # lines carry no time: those already there are old
    assert mark == 2.0 and progress.count_since(mark) == 0
    with path.open("a") as log:
        log.write("reply 3\n")
    assert progress.count_since(mark) == 1
    assert progress.events() is None  # no event log: no message accounting


def test_verify_picks_the_kind_and_fills_placeholders(tmp_path: Path) -> None:
    def render(text: str) -> str:
        return text.replace("{run_dir}", str(tmp_path))

    events = Verify(events="{run_dir}/client.events").progress(render)
    assert isinstance(events, EventProgress) and events.path == tmp_path / "client.events"
    log = Verify(log="{run_dir}/out", pattern="x").progress(render)
    assert isinstance(log, LogProgress) and log.path == tmp_path / "out"
