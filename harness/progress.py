"""How the harness sees a workload make progress, as wall-clock arrival times.

Two kinds: the echo client's event log (each answered round trip carries its own time) and
new lines of a program's output matching a pattern (a tail thread stamps each line as it
appears). Both give the same things to the runner: how many arrived after a moment, the
largest silence around a migration (the downtime), and a timeline to draw. Files are read
incrementally, from where the last read stopped: a long run's log is never parsed whole on
every poll.
"""

from __future__ import annotations

import bisect
import json
import re
import threading
import time
from pathlib import Path
from types import TracebackType

from harness.errors import VerificationError
from harness.verification import largest_gap_ms
from harness.waiting import wait_for
from harness.workloads.events import Event

__all__ = ["EventProgress", "LineTail", "LogProgress", "NoProgress", "Progress"]

Window = tuple[float, float]


class LineTail:
    """New complete lines of a growing file, from where the last read stopped. A torn last
    line (its writer was stopped or killed mid-write) waits for the rest of it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def read(self) -> list[str]:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        if not data:
            return []
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        return [line.decode(errors="replace") for line in lines]


class Progress:
    """Arrivals of progress (wall-clock times, in order) and what the runner asks of them."""

    path: Path
    unit = "round trips"

    def __init__(self) -> None:
        self._times: list[float] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def refresh(self) -> None:
        """Take in what arrived since the last look."""

    def times(self) -> list[float]:
        self.refresh()
        with self._lock:
            return list(self._times)

    def count_since(self, mark: float) -> int:
        self.refresh()
        with self._lock:
            return len(self._times) - bisect.bisect_right(self._times, mark)

    def wait(self, mark: float, count: int, deadline_s: float) -> None:
        """Wait for count arrivals after the wall-clock time mark."""
        wait_for(lambda: self.count_since(mark), lambda n: n >= count, deadline_s, 0.02,
                 error=lambda last: VerificationError(
                     f"no progress: {last} of {count} {self.unit} within {deadline_s:g} s "
                     f"after the migration ({self.path})"))

    def downtime_ms(self, window: Window) -> float | None:
        """The largest silence between two arrivals that overlaps the migration's window."""
        return largest_gap_ms(self.times(), window)

    def timeline(self, window: Window) -> list[tuple[float, float]]:
        """(time, value) of each arrival within a second of the window, to draw: the round
        trip's rtt, or for lines the gap since the previous one (ms)."""
        times = self.times()
        return [
            (round(t, 4), round((t - before) * 1e3, 3))
            for before, t in zip([times[0], *times], times)
            if window[0] - 1 <= t <= window[1] + 1
        ] if times else []

    def events(self) -> list[Event] | None:
        """The echo event log, to account for every message with; None: this kind has none."""
        return None


class EventProgress(Progress):
    """Answered round trips in the client's JSON-lines event log."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._tail = LineTail(path)
        self._events: list[Event] = []
        self._rtts: list[float] = []

    def refresh(self) -> None:
        for line in self._tail.read():
            try:
                event: Event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn line: the writer was killed mid-write
            if not isinstance(event, dict):
                continue
            self._events.append(event)
            if event.get("event") == "received":
                with self._lock:
                    self._times.append(float(event["ts"]))
                self._rtts.append(float(event.get("rtt_ms", 0.0)))

    def timeline(self, window: Window) -> list[tuple[float, float]]:
        self.refresh()
        return [
            (round(t, 4), rtt) for t, rtt in zip(self._times, self._rtts)
            if window[0] - 1 <= t <= window[1] + 1
        ]

    def events(self) -> list[Event]:
        self.refresh()
        return self._events


class LogProgress(Progress):
    """Lines matching a regular expression in a program's output, stamped as they appear by a
    thread that tails the file (the program's own output carries no time)."""

    unit = "matching log lines"

    # How often the tail looks: the resolution of a log-pattern scenario's downtime.
    INTERVAL_S = 0.002

    def __init__(self, path: Path, pattern: str) -> None:
        super().__init__()
        self.path = path
        self.regex = re.compile(pattern)
        self._tail = LineTail(path)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LogProgress:
        self._thread = threading.Thread(target=self._follow, name=f"tail {self.path}", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _follow(self) -> None:
        while not self._stop.wait(self.INTERVAL_S):
            self._take()

    def _take(self) -> None:
        lines = self._tail.read()
        now = time.time()
        matched = sum(1 for line in lines if self.regex.search(line))
        if matched:
            with self._lock:
                self._times.extend([now] * matched)

    def refresh(self) -> None:
        if self._thread is None:  # used without its thread (a readiness probe): read now
            self._take()


class NoProgress(Progress):
    """A program that checks itself shows nothing while it runs: its progress is having run
    ``settle`` seconds (after its start, after each restore). harness.selfcheck asks it at
    the end."""

    unit = "seconds of running"

    def __init__(self, settle: float) -> None:
        super().__init__()
        self.settle = settle
        self.path = Path("-")

    def wait(self, mark: float, count: int, deadline_s: float) -> None:
        # A deliberate delay, not a poll: there is nothing to observe until the program is
        # asked (harness.selfcheck).
        time.sleep(self.settle)
