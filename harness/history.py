"""The nightly history: one JSON line per night, enough to draw the downtime trend."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from harness.compare import Comparison, median_downtime
from harness.result import GOOD

__all__ = ["HISTORY", "entry", "key_name", "append", "read"]

HISTORY = "history.jsonl"


def key_name(scenario: str, backend: str, plan: str) -> str:
    return f"{scenario}/{backend}/{plan}"


def entry(stamp: str, results: dict[str, Any], comparison: Comparison | None) -> dict[str, Any]:
    """One night: when, on what, how many of each outcome, and the median downtime per key."""
    scenarios: list[dict[str, Any]] = results["scenarios"]
    counts = dict(Counter(s["outcome"] for s in scenarios))
    downtime: dict[str, float] = {}
    for s in scenarios:
        median = median_downtime(s)
        if median is not None:
            downtime[key_name(s["name"], s.get("backend", ""), s.get("plan", ""))] = round(median, 3)
    env = results.get("environment", {})
    return {
        "stamp": stamp,
        "criu_version": results.get("criu_version"),
        "kernel": results.get("kernel"),
        "ok": all(s["outcome"] in GOOD for s in scenarios),
        "counts": counts,
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
