"""Scenarios side by side: ``criu-harness run -j N`` and a nightly matrix with ``--jobs N``.

Each scenario runs in a process of its own (started fresh, not forked from a harness that may
hold threads), exactly as it would alone: its own supervisor, cgroup, keeper and run
directory, its own signal handlers. At most N run at once; each result comes back as
results.json's JSON as soon as it is done. A Ctrl-C reaches every one of them (they share the
terminal's process group) and each cleans up as a single run does; a SIGTERM to this process
is passed on to each.

With ``--isolation ns`` even programs with fixed paths run side by side: each run's workloads
see a /tmp of their own.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess
from types import FrameType
from typing import Any

from harness.errors import HarnessError
from harness.fields import Fields
from harness.result import Outcome, ScenarioResult
from harness.scenario import Scenario

__all__ = ["Job", "run_jobs"]


@dataclass(frozen=True)
class Job:
    """One scenario to run: what ScenarioRun takes, the backend by name (a backend holds
    pycriu, which does not cross processes)."""

    scenario: Scenario
    backend: str
    binary: str | None = None
    timeout: float | None = None
    fault: int | None = None
    run: dict[str, Any] = field(default_factory=dict)  # ScenarioRun's other keyword arguments


def _work(conn: Connection, job: Job) -> None:
    """A worker's whole life: run one scenario, send back its result."""
    from harness.criu import get_backend
    from harness.runner import ScenarioRun

    try:
        backend = get_backend(job.backend, job.binary, job.timeout, job.fault)
        result = ScenarioRun(job.scenario, backend, **job.run).run()
    except HarnessError as exc:  # a run that cannot be set up: its own error, not the others'
        result = ScenarioResult(name=job.scenario.name, expected=job.scenario.expect.outcome,
                                backend=job.backend, plan=job.run.get("plan") or "",
                                transport=job.run.get("transport", "local"),
                                isolation=job.run.get("isolation") or "", reason=str(exc))
    except KeyboardInterrupt:
        sys.exit(130)  # the run cleaned up on its way out; the parent says it was interrupted
    conn.send(result.to_json())
    conn.close()


def run_jobs(
    jobs: Sequence[Job],
    workers: int,
    done: Callable[[int, ScenarioResult], None] = lambda i, r: None,
) -> list[ScenarioResult]:
    """Run the jobs, at most workers at once; done(index, result) as each ends. The results
    come back in the jobs' order."""
    ctx = multiprocessing.get_context("spawn")
    results: dict[int, ScenarioResult] = {}
    running: dict[Connection, tuple[int, SpawnProcess]] = {}
    pending = list(enumerate(jobs))
    old = signal.signal(signal.SIGTERM, _terminated) if _main_thread() else None
    try:
        while pending or running:
            while pending and len(running) < workers:
                i, job = pending.pop(0)
                ours, theirs = ctx.Pipe(duplex=False)
                worker = ctx.Process(target=_work, args=(theirs, job), name=f"criu-harness {i}")
                worker.start()
                theirs.close()
                running[ours] = (i, worker)
            for conn in wait(list(running)):
                assert isinstance(conn, Connection)
                i, worker = running.pop(conn)
                result = _receive(conn, jobs[i])
                worker.join()
                if worker.exitcode == 130:
                    raise KeyboardInterrupt
                results[i] = result
                done(i, result)
    except BaseException:
        for _, worker in running.values():
            if worker.exitcode is None and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)  # a Ctrl-C reached them already; a TERM not
        for _, worker in running.values():
            worker.join()
        raise
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    return [results[i] for i in range(len(jobs))]


def _receive(conn: Connection, job: Job) -> ScenarioResult:
    try:
        data = conn.recv()
    except EOFError:
        return ScenarioResult(name=job.scenario.name, expected=job.scenario.expect.outcome,
                              backend=job.backend, outcome=Outcome.ERROR,
                              reason="its worker process ended without a result")
    finally:
        conn.close()
    return ScenarioResult.from_json(Fields(data))


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _terminated(signum: int, frame: FrameType | None) -> None:
    from harness.process import Terminated

    raise Terminated(f"terminated by signal {signum}")
