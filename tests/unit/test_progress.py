"""Progress kinds: arrivals as wall-clock times, read incrementally, the same questions for both."""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness.progress import EventProgress, LineTail, LogProgress
from harness.scenario import Verify


def test_event_progress_counts_round_trips_by_their_own_time(tmp_path: Path) -> None:
    path = tmp_path / "client.events"
    lines = [{"event": "sent", "seq": 1, "ts": 10.0}, {"event": "received", "seq": 1, "ts": 10.5,
                                                       "rtt_ms": 0.5}]
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    progress = EventProgress(path)
    assert progress.count_since(10.2) == 1 and progress.count_since(10.5) == 0
    assert progress.events() == lines  # the event log: message accounting
    assert progress.timeline((10.0, 11.0)) == [(10.5, 0.5)]


def test_an_event_log_is_read_from_where_the_last_read_stopped(tmp_path: Path) -> None:
    path = tmp_path / "client.events"
    progress = EventProgress(path)
    assert progress.count_since(0.0) == 0  # not there yet
    with path.open("w") as log:
        log.write(json.dumps({"event": "received", "seq": 1, "ts": 1.0}) + "\n")
        log.write('{"event": "received", "seq": 2, "ts"')  # torn: its writer was stopped
        log.flush()
        assert progress.count_since(0.0) == 1
        log.write(': 2.0}\n')
    assert progress.count_since(0.0) == 2
    assert [e["seq"] for e in progress.events()] == [1, 2]  # each line taken in once


def test_log_progress_stamps_lines_as_they_appear(tmp_path: Path) -> None:
    path = tmp_path / "client.stdout"
    path.write_text("reply 1\nnoise\n")
    with LogProgress(path, r"^reply \d+$") as progress:
        progress.wait(0.0, 1, 2.0)
        before = time.time()
        time.sleep(0.1)
        with path.open("a") as log:
            log.write("reply 2\n")
        progress.wait(before, 1, 2.0)
        times = progress.times()
        assert len(times) == 2 and times[1] - times[0] >= 0.09
        # The silence between the two lines overlaps the window: that is the downtime.
        downtime = progress.downtime_ms((before, before + 0.05))
        assert downtime is not None and downtime >= 90
        assert progress.events() is None  # no event log: no message accounting


def test_a_line_tail_waits_for_the_rest_of_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "out"
    tail = LineTail(path)
    assert tail.read() == []
    path.write_text("one\ntw")
    assert tail.read() == ["one"]
    with path.open("a") as f:
        f.write("o\n")
    assert tail.read() == ["two"]


def test_verify_picks_the_kind_and_fills_placeholders(tmp_path: Path) -> None:
    def render(text: str) -> str:
        return text.replace("{run_dir}", str(tmp_path))

    events = Verify(events="{run_dir}/client.events").progress(render)
    assert isinstance(events, EventProgress) and events.path == tmp_path / "client.events"
    log = Verify(log="{run_dir}/out", pattern="x").progress(render)
    assert isinstance(log, LogProgress) and log.path == tmp_path / "out"
