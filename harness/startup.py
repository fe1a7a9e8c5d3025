"""Setting a scenario up: build its programs, start its processes, wait until each is ready
and until the loop runs (there is nothing to compare after a migration otherwise)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from harness.errors import VerificationError, WorkloadError
from harness.namespace import Namespaces
from harness.process import Workload
from harness.progress import Progress
from harness.readiness import PidfileReady
from harness.scenario import Scenario
from harness.supervisor import Supervisor

__all__ = ["build", "start", "tails", "warm_up"]

Render = Callable[[str], str]


def build(scenario: Scenario, render: Render) -> None:
    """Compile the scenario's native programs into the run directory."""
    for item in scenario.builds:
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise WorkloadError(f"{scenario.path}: no C compiler (cc) to build {item.output}")
        base = scenario.path.parent
        sources = [str(base / render(s)) for s in item.sources]
        argv = [cc, *item.flags, "-o", render(item.output), *sources]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise WorkloadError(f"building {item.output} failed: {proc.stderr.strip()}")


def start(
    scenario: Scenario,
    supervisor: Supervisor,
    run_dir: Path,
    render: Render,
    namespaces: Namespaces | None = None,
) -> dict[str, Workload]:
    """Start every process in order, each ready before the next starts; each the init of
    namespaces of its own if namespaces says which (harness.isolation)."""
    for spec in scenario.processes:
        own = namespaces
        if own is not None and isinstance(spec.ready, PidfileReady):
            # A daemon: its launcher exits, so it cannot be the namespace's init.
            own = replace(own, init=True, exits=str(run_dir / f"{spec.role}.exits"),
                          pidfile=render(spec.ready.path))
        workload = supervisor.spawn(
            spec.role,
            [render(a) for a in spec.argv],
            run_dir,
            cwd=Path(render(spec.cwd)) if spec.cwd else None,
            env={k: render(v) for k, v in spec.env.items()},
            namespaces=own,
        )
        spec.ready.wait(workload, render)
    return supervisor.workloads


def warm_up(scenario: Scenario, progress: Progress, workloads: dict[str, Workload]) -> None:
    """The loop must run before anything is frozen."""
    verify = scenario.verify
    try:
        progress.wait(0.0, verify.min_progress, verify.deadline)
    except VerificationError as exc:
        raise WorkloadError(f"before any migration: {exc}; {tails(workloads)}") from None


def tails(workloads: dict[str, Workload]) -> str:
    """Each workload's state and last words, to say why it did not go on."""
    return "; ".join(
        f"{name}: {w.status()}" + (f" ({w.tail(2)})" if w.tail(2) else "")
        for name, w in workloads.items()
    )
