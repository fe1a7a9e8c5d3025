"""Is the server's counter continuous? Each reply of the GPU echo server carries the count of
requests it has answered, kept in device memory; across a migration it must go on exactly
where it was: no reset (device memory lost), no repeat (stale memory), no jump.

Replies arrive in the order the server answered them (a datagram socket keeps order), so between
two consecutive replies the counter grows by one per request answered in between: exactly by
one when no request is missing from the client's view, and never by more than the number of
requests sent in between (a reply lost on the way back still counted). A request that never
reached the server is the accounting's business (a lost message), not a break.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Break", "CounterCheck", "counter_breaks", "parse_reply"]

# The GPU server's reply text: "OK,I got it! counter=57 ballast=ok" (or ballast=bad@chunk).
_REPLY = re.compile(r"\bcounter=(\d+)(?:\s+ballast=(\S+))?")


def parse_reply(text: str) -> tuple[int, str] | None:
    """(counter, ballast verdict) carried by a reply's text, or None if it carries none."""
    m = _REPLY.search(text)
    if m is None:
        return None
    return int(m.group(1)), m.group(2) or ""


@dataclass(frozen=True)
class Break:
    """Two consecutive replies whose counters do not follow each other."""

    seq: int
    counter: int
    previous_seq: int
    previous_counter: int

    @property
    def kind(self) -> str:
        if self.counter <= self.previous_counter:
            return "reset" if self.counter <= 1 else "went back"
        return "jump"

    def __str__(self) -> str:
        return (
            f"GPU counter {self.kind}: {self.previous_counter} at seq {self.previous_seq}, "
            f"then {self.counter} at seq {self.seq}"
        )


class CounterCheck:
    """Fed reply after reply (in arrival order), says where the counter breaks."""

    def __init__(self) -> None:
        self.last: tuple[int, int] | None = None  # (seq, counter) of the previous reply
        self.replies = 0

    def see(self, seq: int, counter: int) -> Break | None:
        """Take one reply; a Break when its counter does not follow the previous one's."""
        previous, self.last = self.last, (seq, counter)
        self.replies += 1
        if previous is None:
            return None
        prev_seq, prev_counter = previous
        # The same request answered twice is a duplicate (accounted elsewhere), still +1 here.
        allowed = max(seq - prev_seq, 1)
        if 1 <= counter - prev_counter <= allowed:
            return None
        return Break(seq, counter, prev_seq, prev_counter)


def counter_breaks(events: Iterable[Mapping[str, Any]]) -> list[Break]:
    """Every break of the counter in a client's event log: its replies (``received`` and
    ``late``) that carry a ``counter``, in the order they were logged."""
    check = CounterCheck()
    breaks = []
    for e in events:
        if e.get("event") in ("received", "late") and isinstance(e.get("counter"), int):
            found = check.see(int(e["seq"]), int(e["counter"]))
            if found is not None:
                breaks.append(found)
    return breaks
