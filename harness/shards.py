"""A matrix split into shards (one per machine or CI job) and the shards' results merged back.

The split is deterministic: every job lists the same cells in the same order (scenario files
sorted, then backends, plans, CRIU binaries as given) and shard I of N takes every Nth cell
from the (I-1)th, so the shards cover the matrix exactly once and take about as long.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from harness.compare import key_of
from harness.errors import UsageError
from harness.report import RunReport

__all__ = ["Shard", "merge", "parse_shard"]

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    def take(self, cells: Sequence[T]) -> list[T]:
        return [cell for i, cell in enumerate(cells) if i % self.count == self.index - 1]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """"2/4" -> Shard(2, 4); anything else is a usage error naming what is wrong."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m:
        raise UsageError(f"shard {text!r}: expected I/N, such as 1/2")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"shard {text!r}: I must be between 1 and N")
    return Shard(index, count)


def merge(reports: Sequence[RunReport]) -> RunReport:
    """One run of the shards' results. A result twice (two shards ran the same cell) is an
    error: shards that overlap were not split from the same matrix."""
    if not reports:
        raise UsageError("nothing to merge")
    first = reports[0]
    merged = RunReport(criu_version=first.criu_version, backend=first.backend, kernel=first.kernel,
                       environment=first.environment, iterations=first.iterations)
    seen: dict[tuple[str, str, str], int] = {}
    for n, run in enumerate(reports, 1):
        for result in run.scenarios:
            key = key_of(result, run)
            if key in seen:
                raise UsageError(f"{' '.join(key)}: in shard {seen[key]} and shard {n}: the shards "
                                 "overlap")
            seen[key] = n
            merged.scenarios.append(result)
    versions = {r.criu_version for r in merged.scenarios if r.criu_version}
    if len(versions) > 1:
        merged.criu_version = ", ".join(sorted(versions, reverse=True))
    starts = [r.started for r in reports if r.started is not None]
    ends = [r.finished for r in reports if r.finished is not None]
    merged.started = min(starts) if starts else None
    merged.finished = max(ends) if ends else None
    return merged
