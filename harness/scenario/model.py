"""What a scenario is: the processes to start, how to migrate them, and what must happen."""

from __future__ import annotations

import re
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness import readiness
from harness.criu.options import NETWORK_LOCKS, CriuOptions, config_lines
from harness.criu.plugins import plugin_dir
from harness.criu.version import matches as version_matches
from harness.errors import UsageError
from harness.plan import DEFAULT_PLAN
from harness.problems import MAX_SECONDS, Problems, type_name
from harness.progress import EventProgress, LogProgress, NoProgress, Progress
from harness.readiness import Readiness, StartedReady

PLACEHOLDERS = ("run_dir", "run_id", "python", "scenario_dir", "name")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
CRIU_FLAGS = ("shell_job", "ext_unix_sk", "tcp_established", "leave_stopped")
# The keys of a [criu] table, for every action or in [criu.dump] and [criu.restore].
CRIU_KEYS = (*CRIU_FLAGS, "network_lock", "extra_args", "timeout", "fault", "plugins")


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

    @classmethod
    def from_keys(cls, values: Mapping[str, Any], problems: Problems) -> ProcessSpec | None:
        """A process from a ``[[process]]`` table's keys (or the fixture's spawn() arguments),
        their types already checked; None when it lacks its role or argv."""
        argv = values.get("argv", ())
        if "argv" in values and not argv:
            problems.add(("argv",), "must not be empty")
        env = values.get("env", {})
        for key, value in env.items():
            if not isinstance(value, str):
                problems.add(("env", key), f"must be a string, not {type_name(value)}")
        if isinstance(values.get("role"), str):
            problems.identifier(values["role"], "role")
        ready: Readiness = StartedReady()
        if "ready" in values:
            ready = readiness.from_keys(values["ready"], problems.at("ready")) or ready
        if "role" not in values or not argv:
            return None
        return cls(values["role"], tuple(argv), values.get("cwd"), dict(env), ready)


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
            timeout=merged.get("timeout"),
            fault=merged.get("fault"),
            # The CRIU plugins it needs ("cuda"): found where they are (harness.criu.plugins).
            plugin_dir=plugin_dir(plugins) if (plugins := merged.get("plugins")) else None,
        )

    @classmethod
    def from_keys(cls, values: Mapping[str, Any], problems: Problems) -> CriuSpec:
        """CRIU options from a ``[criu]`` table's keys: for every action, and per action in
        ``dump`` and ``restore`` tables. The flags' types are the caller's to check."""
        sections: dict[str, dict[str, Any]] = {"common": {}, "dump": {}, "restore": {}}
        for key, value in values.items():
            if key in ("dump", "restore") and not isinstance(value, Mapping):
                problems.add((key,), f"must be a table, not {type_name(value)}")
            elif key in ("dump", "restore"):
                sections[key] = dict(value)
            else:
                sections["common"][key] = value
        for name, section in sections.items():
            at = problems.at(name) if name != "common" else problems
            for key in section:
                if key not in CRIU_KEYS:
                    at.add((key,), f"unknown key (expected one of: {', '.join(CRIU_KEYS)})")
            if "network_lock" in section and section["network_lock"] not in NETWORK_LOCKS:
                at.add(("network_lock",), f"must be one of {', '.join(NETWORK_LOCKS)}")
            extra = section.get("extra_args", [])
            if not isinstance(extra, (list, tuple)) or not all(isinstance(a, str) for a in extra):
                at.add(("extra_args",), "must be a list of strings")
            else:
                try:
                    config_lines(tuple(extra))  # what the rpc backend can pass on, both can
                except UsageError as exc:
                    at.add(("extra_args",), str(exc))
            if isinstance(section.get("timeout"), (int, float)):
                at.positive(section["timeout"], "timeout", most=MAX_SECONDS)
            if isinstance(section.get("fault"), int):
                at.positive(section["fault"], "fault")
            plugins = section.get("plugins", [])
            if not isinstance(plugins, (list, tuple)) or not all(isinstance(p, str) for p in plugins):
                at.add(("plugins",), "must be a list of strings")
            else:
                for name in plugins:
                    if not re.match(r"^[a-z0-9_]+$", name):
                        at.add(("plugins",), f"bad plugin name {name!r} (cuda_plugin.so: cuda)")
        return cls(sections["common"], sections["dump"], sections["restore"])


@dataclass(frozen=True)
class Expectation:
    """What must happen: the migration succeeds; or CRIU fails by ``action`` with a log line
    containing ``signature``; or ("breaks") CRIU dumps and restores without a complaint but
    the IPC does not come back, and the client's first error contains ``signature``."""

    outcome: str = "migrates"  # or "fails", "breaks"
    action: str | None = None
    signature: str | None = None
    # A CRIU that dies of a signal never fails "as expected", unless this names that signal
    # ("SIGKILL"): an injected fault that kills CRIU itself (harness.faults).
    killed_by: str | None = None
    max_lost: int = 0
    max_client_errors: int = 0
    max_duplicates: int = 0
    # Visible-state differences CRIU is known to cause here, as fnmatch patterns on
    # "FIELD: BEFORE -> AFTER" (harness.fingerprint): reported, but they do not fail a cycle.
    allowed_differences: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verify:
    """How to tell that the workload works after a migration, in one of three ways: the echo
    client's event log (``events``), new lines of a log matching ``pattern`` (``log``), or,
    for a program that checks itself, a ``signal`` sent after the last restore (and ``settle``
    seconds of running after each), then its exit status and/or a ``file`` it writes, which
    must match ``pattern``."""

    events: str | None = None
    log: str | None = None
    pattern: str | None = None
    min_progress: int = 20
    deadline: float = 15.0
    signal: str | None = None
    settle: float = 0.5
    exit_status: int | None = None
    file: str | None = None

    @classmethod
    def from_keys(cls, values: Mapping[str, Any], problems: Problems) -> Verify | None:
        """How to verify, from a ``[verify]`` table's keys (or the fixture's arguments), their
        types already checked: exactly one of an event log, a log or a signal."""
        before = len(problems)
        kinds = [k for k in ("events", "log", "signal") if k in values]
        if len(kinds) != 1:
            names = [problems.name(k) for k in ("events", "log", "signal")]
            problems.add((), f"must name exactly one of {names[0]} (an echo event log), "
                             f"{names[1]} (lines of a log) or {names[2]} (a program that "
                             "checks itself)")
        if "log" in values and "pattern" not in values:
            problems.add(("pattern",), f"missing (required with {problems.name('log')})")
        if "signal" in values:
            _self_check(values, problems)
        elif any(k in values for k in ("settle", "exit_status", "file")):
            problems.add((), f"{problems.name('settle')}, {problems.name('exit_status')} and "
                             f"{problems.name('file')} go with {problems.name('signal')}")
        if "pattern" in values:
            problems.regex(values["pattern"], "pattern")
        if "min_progress" in values:
            problems.positive(values["min_progress"], "min_progress", most=1_000_000)
        if "deadline" in values:
            problems.positive(values["deadline"], "deadline", most=MAX_SECONDS)
        return cls(**values) if len(problems) == before else None

    def progress(self, render: Callable[[str], str]) -> Progress:
        """How to watch the workload progress, the run's placeholders filled in by render."""
        if self.events is not None:
            return EventProgress(Path(render(self.events)))
        if self.log is not None and self.pattern is not None:
            return LogProgress(Path(render(self.log)), self.pattern)
        return NoProgress(self.settle)


def _self_check(values: Mapping[str, Any], problems: Problems) -> None:
    """A self-checking program's keys: a real signal, and something to judge it by."""
    name = values["signal"]
    if not (name.startswith("SIG") and name in signal.Signals.__members__):
        problems.add(("signal",), f"not a signal name: {name!r} (say SIGTERM)")
    if "exit_status" not in values and "file" not in values:
        problems.add((), f"{problems.name('signal')} needs {problems.name('exit_status')} "
                         f"and/or {problems.name('file')} to judge the program by")
    if "file" in values and "pattern" not in values:
        problems.add(("pattern",), f"missing (required with {problems.name('file')})")
    if "settle" in values:
        problems.positive(values["settle"], "settle", zero_ok=True, most=MAX_SECONDS)
    if "exit_status" in values and not 0 <= values["exit_status"] <= 255:
        problems.add(("exit_status",), f"must be 0 to 255, not {values['exit_status']}")


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
    # The IPC mechanism the scenario shows (the atlas's row), e.g. "unix-seqpacket"; "" if none.
    mechanism: str = ""
    # [expect.criu."SPEC"]: (version spec, the keys it changes), first match wins.
    criu_expect: tuple[tuple[str, dict[str, Any]], ...] = ()
    # [expect.or]: what is as expected too when CRIU does the other thing (succeeds where
    # [expect] says it fails, or fails where it says it succeeds): CRIU is not always
    # deterministic (scenarios/atlas/scm-rights.toml).
    alternative: Expectation | None = None
    # "none", "ns" or "ns+net" (harness.isolation); None: the run's choice, else the default.
    isolation: str | None = None

    @property
    def roles(self) -> list[str]:
        return [p.role for p in self.processes]

    def expectation(self, plan: str, criu_version: str | None = None) -> Expectation:
        """What must happen under plan, on that CRIU version (when given)."""
        expect = self.plan_expect.get(plan, self.expect)
        for spec, keys in self.criu_expect:
            if criu_version is not None and version_matches(spec, criu_version):
                return replace(expect, **keys)
        return expect

    def render(self, text: str, run_dir: Path) -> str:
        """Replace the placeholders ({run_dir}, {run_id}, {python}, {scenario_dir}, {name}) in
        text. {run_id} is unique to the run (the run directory's random part): for a name
        that must live outside the run directory, an abstract socket or a /tmp path, so two
        runs side by side do not collide."""
        values = {
            "run_dir": str(run_dir),
            "run_id": run_dir.name.rsplit("-", 1)[-1],
            "python": sys.executable,
            "scenario_dir": str(self.path.parent),
            "name": self.name,
        }
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
