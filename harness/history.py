"""The nightly history: one JSON line per night, enough to draw the downtime trend."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TypedDict, cast

from harness.compare import Comparison
from harness.report import RunReport

__all__ = ["HISTORY", "entry", "key_name", "append", "read"]

HISTORY = "history.jsonl"


class Night(TypedDict, total=False):
    """One line of the history: a night's environment, its counts and its downtimes."""

    stamp: str
    criu_version: str
    kernel: str
    ok: bool
    counts: dict[str, int]  # by outcome
    regressions: int | None
    verdicts: dict[str, int]  # by verdict kind, against the night before
    downtime_ms: dict[str, float]  # median, by key_name
    features: dict[str, bool | None]


def key_name(scenario: str, backend: str, plan: str) -> str:
    return f"{scenario}/{backend}/{plan}"


def entry(stamp: str, results: RunReport, comparison: Comparison | None) -> Night:
    """One night: when, on what, how many of each outcome, and the median downtime per key."""
    downtime: dict[str, float] = {}
    for s in results.scenarios:
        median = s.median_downtime()
        if median is not None:
            downtime[key_name(s.name, results.backend_of(s), s.variant)] = round(median, 3)
    env = results.environment or {}
    return {
        "stamp": stamp,
        "criu_version": results.criu_version,
        "kernel": results.kernel,
        "ok": results.ok,
        "counts": dict(Counter(str(s.outcome) for s in results.scenarios)),
        "regressions": len(comparison.regressions) if comparison else None,
        "verdicts": comparison.counts() if comparison else {},
        "downtime_ms": downtime,
        "features": env.get("features", {}),
    }


def append(path: Path, night: Night) -> None:
    with path.open("a") as f:
        f.write(json.dumps(night, sort_keys=True) + "\n")


def read(path: Path) -> list[Night]:
    """Every night recorded so far, oldest first; a line that is not JSON is skipped, not fatal:
    a torn last line (a night killed while writing) must not hide all the others."""
    if not path.exists():
        return []
    nights: list[Night] = []
    for line in path.read_text().splitlines():
        try:
            night = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(night, dict):
            # Read with .get() by the trend: a night from an older harness lacks fields.
            nights.append(cast(Night, night))
    return nights
