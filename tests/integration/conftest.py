"""What the integration tests share: the dgram-echo pair, running, to migrate by hand."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from runs import Pair, PairFactory

from harness import scenario
from harness.progress import EventProgress
from harness.supervisor import Supervisor


@contextmanager
def _dgram_pair(run_dir: Path) -> Iterator[Pair]:
    """The dgram-echo pair, running and answering, killed whatever ends the block."""
    s = scenario.find("dgram-echo")
    with Supervisor() as supervisor:
        for spec in s.processes:
            workload = supervisor.spawn(spec.role, [s.render(a, run_dir) for a in spec.argv],
                                        run_dir)
            # Ready before the next starts, as the runner does: a client started before the
            # server has bound its socket loses its first messages (ENOENT), not the migration.
            spec.ready.wait(workload, lambda text: s.render(text, run_dir))
        progress = EventProgress(run_dir / "client.events")
        progress.wait(0.0, 20, 15)
        yield supervisor.workloads, progress


@pytest.fixture
def dgram_pair() -> PairFactory:
    """``with dgram_pair(run_dir) as (workloads, progress)``: see _dgram_pair."""
    return _dgram_pair
