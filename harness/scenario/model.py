"""What a scenario is: the processes to start, how to migrate them, and what must happen."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.criu.options import CriuOptions
from harness.plan import DEFAULT_PLAN
from harness.readiness import Readiness, StartedReady
from harness.verification import EventProgress, LogProgress, Progress

PLACEHOLDERS = ("run_dir", "python", "scenario_dir", "name")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
CRIU_FLAGS = ("shell_job", "ext_unix_sk", "tcp_established", "leave_stopped")


@dataclass(frozen=True)
class Build:
    """A native program the harness compiles into the run directory before starting it."""

    sources: tuple[str, ...]
    output: str
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProcessSpec:
    role: str
    argv: tuple[str, ...]
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    ready: Readiness = StartedReady()


@dataclass(frozen=True)
class CriuSpec:
    """CRIU options for every action, and per action (``[criu.dump]``, ``[criu.restore]``)."""

    common: dict[str, Any] = field(default_factory=dict)
    dump: dict[str, Any] = field(default_factory=dict)
    restore: dict[str, Any] = field(default_factory=dict)

    def options(self, action: str, images_dir: Path, log_file: str) -> CriuOptions:
        merged = {**self.common, **(self.dump if action == "dump" else self.restore)}
        return CriuOptions(
            images_dir=images_dir,
            log_file=log_file,
            **{k: v for k, v in merged.items() if k in CRIU_FLAGS},
            network_lock=merged.get("network_lock"),
            extra_args=tuple(merged.get("extra_args", ())),
        )


@dataclass(frozen=True)
class Expectation:
    """What must happen: the migration succeeds, or CRIU fails by ``action`` with a log line
    containing ``signature``."""

    outcome: str = "migrates"  # or "fails"
    action: str | None = None
    signature: str | None = None
    max_lost: int = 0
    max_client_errors: int = 0
    # Visible-state differences CRIU is known to cause here, as fnmatch patterns on
    # "FIELD: BEFORE -> AFTER" (harness.fingerprint): reported, but they do not fail a cycle.
    allowed_differences: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verify:
    """How to tell that the workload runs: the client's echo event log, or new lines of a log
    matching a pattern (for programs that write no events)."""

    events: str | None = None
    log: str | None = None
    pattern: str | None = None
    min_progress: int = 20
    deadline: float = 15.0

    def progress(self, render: Callable[[str], str]) -> Progress:
        """How to watch the workload progress, the run's placeholders filled in by render."""
        if self.events is not None:
            return EventProgress(Path(render(self.events)))
        assert self.log is not None and self.pattern is not None
        return LogProgress(Path(render(self.log)), self.pattern)


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    processes: tuple[ProcessSpec, ...]
    expect: Expectation
    verify: Verify
    description: str = ""
    plan: str = DEFAULT_PLAN
    plan_expect: dict[str, Expectation] = field(default_factory=dict)
    criu: CriuSpec = CriuSpec()
    builds: tuple[Build, ...] = ()
    features: tuple[str, ...] = ()

    @property
    def roles(self) -> list[str]:
        return [p.role for p in self.processes]

    def expectation(self, plan: str) -> Expectation:
        return self.plan_expect.get(plan, self.expect)

    def render(self, text: str, run_dir: Path) -> str:
        """Replace the placeholders ({run_dir}, {python}, {scenario_dir}, {name}) in text."""
        values = {
            "run_dir": str(run_dir),
            "python": sys.executable,
            "scenario_dir": str(self.path.parent),
            "name": self.name,
        }
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
