"""The nightly history: one JSON line per night, enough to draw the downtime trend."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from harness.compare import Comparison
from harness.result import RunReport

__all__ = ["HISTORY", "entry", "key_name", "append", "read"]

HISTORY = "history.jsonl"


def key_name(scenario: str, backend: str, plan: str) -> str:
    return f"{scenario}/{backend}/{plan}"


def entry(stamp: str, results: RunReport, comparison: Comparison | None) -> dict[str, Any]:
    """One night: when, on what, how many of each outcome, and the median downtime per key."""
    downtime: dict[str, float] = {}
    for s in results.scenarios:
        median = s.median_downtime()
        if median is not None:
            downtime[key_name(s.name, results.backend_of(s), s.plan)] = round(median, 3)
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


def append(path: Path, night: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(night, sort_keys=True) + "\n")


def read(path: Path) -> list[dict[str, Any]]:
    """Every night recorded so far, oldest first; a line that is not JSON is skipped, not fatal:
    a torn last line (a night killed while writing) must not hide all the others."""
    if not path.exists():
        return []
    nights = []
    for line in path.read_text().splitlines():
        try:
            night = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(night, dict):
            nights.append(night)
    return nights
