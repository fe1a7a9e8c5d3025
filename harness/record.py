"""What a migration did, step by step: the record every migration mode fills."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from harness.criu import CriuCall
from harness.errors import CriuError
from harness.result import Phase, Step

__all__ = ["MigrationRecord", "phase"]


@dataclass
class MigrationRecord:
    """What a migration did; ``error`` is the CRIU failure that stopped it, if any."""

    plan: str
    phases: list[Phase] = field(default_factory=list)
    calls: list[CriuCall] = field(default_factory=list)
    error: CriuError | None = None
    failed_step: Step | None = None
    started: float = 0.0
    finished: float = 0.0
    # A safe hand-over gave up: the copies were killed and the sources resumed.
    handed_back: bool = False


@contextmanager
def phase(record: MigrationRecord, step: Step, role: str) -> Iterator[Phase]:
    """Time a step into the record; a step that raises is marked not ok."""
    timed = Phase(step, role, time.time(), 0.0)
    record.phases.append(timed)
    try:
        yield timed
    except BaseException:
        timed.ok = False
        raise
    finally:
        timed.finished = time.time()
