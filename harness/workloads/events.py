"""The workloads' event log: one JSON object per line, flushed as it happens.

Fields: ``event`` (start, sent, received, late, timeout, error), ``seq`` (the message number),
``ts`` (wall clock, seconds, comparable with the harness's phase times), and per event
``rtt_ms`` or ``error``.
"""

from __future__ import annotations

import json
import time
from typing import IO, Any, Required, TypedDict


class Event(TypedDict, total=False):
    """One line of the event log, as written and as read back."""

    event: Required[str]
    seq: int  # the message; null on the start event, which has none
    ts: Required[float]
    rtt_ms: float
    error: str


class EventLog:
    """Appends events to a file, one line each, flushed at once so a kill loses nothing."""

    def __init__(self, path: str | None) -> None:
        # Line-buffered append: a restored process continues where the file ends.
        self._file: IO[str] | None = open(path, "a", buffering=1) if path else None  # noqa: SIM115

    def emit(self, event: str, seq: int | None = None, **fields: Any) -> None:
        if self._file is None:
            return
        record = {"event": event, "seq": seq, "ts": time.time(), **fields}
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
