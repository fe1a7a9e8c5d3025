"""When a started process counts as ready: one class per kind, each with its own probe.

A scenario's ``ready`` table, or the ``migration`` fixture's ``ready_*`` arguments, name exactly
one kind; :func:`from_keys` is where that rule is written, for both. A new kind is one more
class in :data:`KINDS`: its keys, its checks, its probe.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import psutil

from harness.errors import WorkloadError
from harness.problems import MAX_SECONDS, Problems
from harness.progress import LogProgress
from harness.verification import received_since
from harness.waiting import DeadlinePassed, wait_for

# Fills a scenario's placeholders ({run_dir}, ...) in a path: Scenario.render, for one run.
Render = Callable[[str], str]

__all__ = [
    "KEYS",
    "KINDS",
    "DelayReady",
    "EventsReady",
    "LogReady",
    "PidfileReady",
    "Readiness",
    "SocketReady",
    "StartedReady",
    "from_keys",
]


class Started(Protocol):
    """What waiting needs of a started process (harness.process.Workload)."""

    @property
    def name(self) -> str: ...

    def alive(self) -> bool: ...

    def tail(self, lines: int = 5) -> str: ...

    def returncode(self) -> int | None: ...

    def adopt(self, pid: int) -> None: ...

    def host_pid(self, pid: int) -> int | None: ...

    def became(self, pid: int) -> None: ...


@dataclass(frozen=True)
class Readiness:
    """A kind of readiness: ``probe`` says whether the process is ready; ``wait`` polls it until
    it is, or the process ended, or ``timeout`` seconds passed."""

    timeout: float = field(default=10.0, kw_only=True)

    key: ClassVar[str] = ""  # the key that names this kind in a ready table
    takes: ClassVar[Mapping[str, type]] = {}  # its keys and their types

    def probe(self, render: Render, elapsed: float) -> bool:
        """Ready now? ``elapsed``: seconds since the wait began."""
        raise NotImplementedError

    def ended(self, process: Started) -> bool:
        """The process is gone, so it will never be ready. (A kind for daemons, whose launcher
        exits once the daemon runs, would say otherwise.)"""
        return not process.alive()

    @property
    def deadline(self) -> float:
        return self.timeout

    def wait(self, process: Started, render: Render) -> None:
        """Return once the process is ready; raise WorkloadError if it ends or never is."""
        began = time.monotonic()

        def ready() -> bool:
            if self.ended(process):
                raise WorkloadError(f"{process.name} exited at start: {process.tail()}")
            return self.probe(render, time.monotonic() - began)

        try:
            wait_for(ready, timeout=self.deadline, interval=0.01)
        except DeadlinePassed:
            raise WorkloadError(
                f"{process.name} not ready within {self.deadline:g} s: {process.tail()}"
            ) from None

    @classmethod
    def check(cls, values: Mapping[str, Any], problems: Problems) -> None:
        """This kind's own rules about its keys (their types are the caller's business)."""

    @classmethod
    def of(cls, values: Mapping[str, Any], timeout: float) -> Readiness:
        raise NotImplementedError


@dataclass(frozen=True)
class StartedReady(Readiness):
    """Nothing to observe: started (and still running) is ready."""

    def probe(self, render: Render, elapsed: float) -> bool:
        return True


@dataclass(frozen=True)
class SocketReady(Readiness):
    """A unix socket exists at ``path`` (the server has bound it)."""

    path: str
    key: ClassVar[str] = "socket"
    takes: ClassVar[Mapping[str, type]] = {"socket": str}

    def probe(self, render: Render, elapsed: float) -> bool:
        path = render(self.path)
        try:
            return stat.S_ISSOCK(os.stat(path).st_mode)
        except OSError:
            return False

    @classmethod
    def of(cls, values: Mapping[str, Any], timeout: float) -> Readiness:
        return cls(values["socket"], timeout=timeout)


@dataclass(frozen=True)
class LogReady(Readiness):
    """A line of the log at ``path`` matches ``pattern``."""

    path: str
    pattern: str
    key: ClassVar[str] = "log"
    takes: ClassVar[Mapping[str, type]] = {"log": str, "pattern": str}

    def probe(self, render: Render, elapsed: float) -> bool:
        return LogProgress(Path(render(self.path)), self.pattern).count_since(0.0) > 0

    @classmethod
    def check(cls, values: Mapping[str, Any], problems: Problems) -> None:
        if "log" in values and "pattern" not in values:
            problems.add(("pattern",), f"missing (required with {problems.name('log')})")
        if "pattern" in values:
            problems.regex(values["pattern"], "pattern")

    @classmethod
    def of(cls, values: Mapping[str, Any], timeout: float) -> Readiness:
        return cls(values["log"], values["pattern"], timeout=timeout)


@dataclass(frozen=True)
class EventsReady(Readiness):
    """The echo event log at ``path`` shows an answered round trip."""

    path: str
    key: ClassVar[str] = "events"
    takes: ClassVar[Mapping[str, type]] = {"events": str}

    def probe(self, render: Render, elapsed: float) -> bool:
        return received_since(Path(render(self.path)), 0.0) > 0

    @classmethod
    def of(cls, values: Mapping[str, Any], timeout: float) -> Readiness:
        return cls(values["events"], timeout=timeout)


@dataclass(frozen=True)
class DelayReady(Readiness):
    """A last resort for a program that shows nothing: ``seconds`` have passed (and it runs)."""

    seconds: float
    key: ClassVar[str] = "delay"
    takes: ClassVar[Mapping[str, type]] = {"delay": float}

    def probe(self, render: Render, elapsed: float) -> bool:
        return elapsed >= self.seconds

    @property
    def deadline(self) -> float:
        return self.seconds + self.timeout  # the delay is waited out whatever the timeout

    @classmethod
    def check(cls, values: Mapping[str, Any], problems: Problems) -> None:
        if "delay" in values:
            problems.positive(values["delay"], "delay", most=MAX_SECONDS)

    @classmethod
    def of(cls, values: Mapping[str, Any], timeout: float) -> Readiness:
        return cls(float(values["delay"]), timeout=timeout)


@dataclass(frozen=True)
class PidfileReady(Readiness):
    """A daemon: its launcher forks the real process (which may make a session of its own,
    fork again...) and exits 0 once that process has written its pid into ``path``. Ready
    when the launcher has exited 0 and the file holds the pid of a live process; from then on
    that process is the workload (it is frozen, dumped and restored in the launcher's place)."""

    path: str
    key: ClassVar[str] = "pidfile"
    takes: ClassVar[Mapping[str, type]] = {"pidfile": str}

    def probe(self, render: Render, elapsed: float) -> bool:
        return self.daemon(render) is not None

    def daemon(self, render: Render, process: Started | None = None) -> int | None:
        """The live process the pidfile names, if it names one yet (as the harness sees it:
        in a PID namespace the file holds the daemon's pid there, translated by process)."""
        try:
            text = Path(render(self.path)).read_text().strip()
        except OSError:
            return None
        if not text.isdigit():
            return None  # not written whole yet
        pid = process.host_pid(int(text)) if process is not None else int(text)
        if pid is None:
            return None
        try:
            alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return None
        return pid if alive else None

    def wait(self, process: Started, render: Render) -> None:
        def ready() -> bool:
            code = process.returncode()
            if code is None:
                return False  # the launcher is still at it
            if code != 0:
                raise WorkloadError(
                    f"{process.name}: the launcher exited with status {code}: {process.tail()}"
                )
            return self.daemon(render, process) is not None

        wait_for(ready, timeout=self.deadline, interval=0.01, error=lambda _: WorkloadError(
            f"{process.name} not ready within {self.deadline:g} s: no live process named in "
            f"{render(self.path)} after the launcher exited: {process.tail()}"))
        pid = self.daemon(render, process)
        assert pid is not None
        process.became(pid)

    @classmethod
    def of(cls, values: Mapping[str, Any], timeout: float) -> Readiness:
        return cls(values["pidfile"], timeout=timeout)


KINDS: dict[str, type[Readiness]] = {
    kind.key: kind for kind in (SocketReady, LogReady, EventsReady, DelayReady, PidfileReady)
}
# Every key a ready table takes, with its type.
KEYS: dict[str, type] = {
    **{key: kind for cls in KINDS.values() for key, kind in cls.takes.items()},
    "timeout": float,
}


def from_keys(values: Mapping[str, Any], problems: Problems) -> Readiness | None:
    """The readiness that values (a ready table) name: exactly one kind, with what it needs.
    Every problem goes to problems; None when there is one."""
    before = len(problems)
    named = [kind for key, kind in KINDS.items() if key in values]
    if len(named) != 1:
        kinds = ", ".join(problems.name(key) for key in KINDS)
        problems.add((), f"must name exactly one of {kinds}")
    for kind in KINDS.values():
        if any(key in values for key in kind.takes):
            kind.check(values, problems)
    if "timeout" in values:
        problems.positive(values["timeout"], "timeout", most=MAX_SECONDS)
    if len(problems) > before:
        return None
    return named[0].of(values, float(values.get("timeout", 10.0)))
