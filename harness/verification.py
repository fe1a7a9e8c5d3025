"""What the client saw: accounting of the echo event log (harness.progress waits for it)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness.workloads.events import Event


def read_events(path: Path) -> list[Event]:
    """The events of a JSON-lines log; a torn last line (the writer was killed) is skipped."""
    events = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


@dataclass
class Accounting:
    """The client's view of a run: every message sent, answered, lost or repeated."""

    sent: int
    answered: int
    messages_lost: int
    duplicates: int
    out_of_order: int
    timeouts: int
    client_errors: int
    downtime_ms: float | None
    error_samples: list[str]

    @classmethod
    def from_events(
        cls, events: list[Event], window: tuple[float, float] | None = None
    ) -> Accounting:
        """Account for events; downtime is the largest gap between answered round trips that
        overlaps window (the migration), or anywhere when there is no window."""
        sent = [e["seq"] for e in events if e.get("event") == "sent"]
        replies = [e for e in events if e.get("event") in ("received", "late")]
        counts = Counter(e["seq"] for e in replies)
        answered = set(counts)
        # A message is lost when a later one was answered and it never was; the messages
        # after the last answer may still be in flight, so they are not counted (yet).
        last_answered = max(answered, default=0)
        lost = sum(1 for seq in set(sent) if seq not in answered and seq < last_answered)
        out_of_order = 0
        highest = 0
        for e in replies:
            if e["seq"] < highest:
                out_of_order += 1
            highest = max(highest, e["seq"])
        errors = [e for e in events if e.get("event") == "error"]
        return cls(
            sent=len(set(sent)),
            answered=len(answered),
            messages_lost=lost,
            duplicates=sum(n - 1 for n in counts.values() if n > 1),
            out_of_order=out_of_order,
            timeouts=sum(1 for e in events if e.get("event") == "timeout"),
            client_errors=len(errors),
            downtime_ms=largest_gap_ms(
                [e["ts"] for e in events if e.get("event") == "received"], window
            ),
            error_samples=[str(e.get("error")) for e in errors[:3]],
        )


def largest_gap_ms(times: list[float], window: tuple[float, float] | None = None) -> float | None:
    """The largest gap between consecutive times (ms) that overlaps window, if given."""
    best: float | None = None
    for before, after in zip(times, times[1:]):
        if window is not None and (after < window[0] or before > window[1]):
            continue
        gap = (after - before) * 1e3
        if best is None or gap > best:
            best = gap
    return round(best, 3) if best is not None else None


def received_since(path: Path, since: float) -> int:
    return sum(
        1 for e in read_events(path) if e.get("event") == "received" and e.get("ts", 0) > since
    )


def lost_seqs(events: list[Event]) -> set[int]:
    """Messages sent and never answered although a later one was."""
    answered = {e["seq"] for e in events if e.get("event") in ("received", "late")}
    last = max(answered, default=0)
    return {
        e["seq"]
        for e in events
        if e.get("event") == "sent" and e["seq"] not in answered and e["seq"] < last
    }


def losses_between(events: list[Event], since: float, until: float) -> tuple[int, int]:
    """(messages lost, client errors) among the messages sent and errors seen in [since, until]."""
    lost = lost_seqs(events)
    messages = sum(
        1 for e in events
        if e.get("event") == "sent" and e["seq"] in lost and since <= e["ts"] <= until
    )
    errors = sum(1 for e in events if e.get("event") == "error" and since <= e["ts"] <= until)
    return messages, errors
