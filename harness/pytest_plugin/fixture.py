"""The ``migration`` fixture: declare your own processes, migrate them, get the result."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.criu import Backend
from harness.errors import UsageError
from harness.plan import DEFAULT_PLAN
from harness.pytest_plugin.reporting import record_properties
from harness.pytest_plugin.settings import (
    CALL_REPORT,
    FIXTURE,
    CriuSettings,
    require_criu,
)
from harness.result import ScenarioResult
from harness.rundir import RunDir
from harness.runner import ScenarioRun
from harness.scenario import (
    CRIU_FLAGS,
    Build,
    CriuSpec,
    Expectation,
    ProcessSpec,
    Ready,
    Scenario,
    Verify,
)

# The keys a fixture's criu= mapping takes: those of a scenario file's [criu] table.
_CRIU_KEYS = (*CRIU_FLAGS, "network_lock", "extra_args", "plugins")
# A unix socket path holds at most 107 bytes: keep the run directory's name short.
_NAME_MAX = 24


# --- the migration fixture ----------------------------------------------------------------------


@dataclass(frozen=True)
class SpawnedProcess:
    """A process the migration will start: where its output goes, to read it afterwards."""

    role: str
    argv: tuple[str, ...]
    stdout: Path
    stderr: Path


@dataclass
class _Progress:
    log: str | None = None
    pattern: str | None = None
    events: str | None = None
    role: str = ""


class MigrationFixture:
    """Declare processes with :meth:`spawn`, then :meth:`run` starts them in order, waits for
    each to be ready and for the workload to make progress, migrates it and verifies it again.

    Everything happens in a private run directory (:meth:`path`) that is removed after the
    test unless ``--keep-artifacts`` says otherwise.
    """

    def __init__(
        self,
        name: str,
        base: Path,
        settings: CriuSettings,
        backend: Backend,
        expect: Expectation | None = None,
        properties: list[tuple[str, object]] | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.backend = backend
        self._base = base  # the test file: build sources are found relative to it
        self._expect = expect
        # The test's user_properties: junitxml writes them as the test case's properties.
        self._properties = properties if properties is not None else []
        self._rundir = RunDir(name)
        self._processes: list[ProcessSpec] = []
        self._spawned: list[SpawnedProcess] = []
        self._builds: list[Build] = []
        self._progress: _Progress | None = None
        self.result: ScenarioResult | None = None

    @property
    def run_dir(self) -> Path:
        return self._rundir.path

    def path(self, *parts: str) -> str:
        """A path inside the run directory (for sockets, logs, anything the processes make)."""
        return str(self.run_dir.joinpath(*parts))

    def build(
        self, *sources: str, output: str | None = None, flags: Sequence[str] = ("-O2", "-Wall")
    ) -> str:
        """Compile C sources (relative to the test file) with cc into the run directory when the
        migration runs; return the program's path."""
        if not sources:
            raise UsageError("build() needs at least one source file")
        out = self.path(output or Path(sources[0]).stem)
        self._builds.append(Build(sources=tuple(sources), output=out, flags=tuple(flags)))
        return out

    def spawn(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        role: str,
        ready_socket: str | None = None,
        ready_pattern: str | None = None,
        ready_log: str | None = None,
        ready_events: str | None = None,
        ready_delay: float | None = None,
        ready_timeout: float = 10.0,
        progress_pattern: str | None = None,
        progress_log: str | None = None,
        progress_events: str | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> SpawnedProcess:
        """Declare a process: started by :meth:`run`, in the order of the spawn() calls.

        Ready when ``ready_socket`` exists, a line matches ``ready_pattern`` (in ``ready_log``,
        by default the process's stdout), ``ready_events`` shows a round trip, or after
        ``ready_delay`` seconds. One process says how to see the workload progress: new lines
        matching ``progress_pattern`` (in ``progress_log``, by default its stdout), or answered
        round trips in a ``progress_events`` log (the harness's own echo workloads write one).
        """
        if self.result is not None:
            raise UsageError("spawn() after run(): declare every process first")
        if not argv:
            raise UsageError(f"spawn(role={role!r}): argv is empty")
        if any(p.role == role for p in self._processes):
            raise UsageError(f"spawn(): role {role!r} is used twice")
        stdout = self.run_dir / f"{role}.stdout"  # where harness.process writes its output
        kinds = [k for k, v in (("ready_socket", ready_socket), ("ready_pattern", ready_pattern),
                                ("ready_events", ready_events), ("ready_delay", ready_delay))
                 if v is not None]
        if len(kinds) > 1:
            raise UsageError(f"spawn(role={role!r}): give one of {', '.join(kinds)}, not several")
        if ready_log is not None and ready_pattern is None:
            raise UsageError(f"spawn(role={role!r}): ready_log needs ready_pattern")
        ready = Ready(
            socket=ready_socket,
            log=(ready_log or str(stdout)) if ready_pattern is not None else None,
            pattern=ready_pattern,
            events=ready_events,
            delay=ready_delay,
            timeout=ready_timeout,
        )
        _check_regex(ready_pattern, f"spawn(role={role!r}): ready_pattern")
        if progress_log is not None and progress_pattern is None:
            raise UsageError(f"spawn(role={role!r}): progress_log needs progress_pattern")
        if progress_pattern is not None or progress_events is not None:
            if progress_pattern is not None and progress_events is not None:
                raise UsageError(
                    f"spawn(role={role!r}): give progress_pattern or progress_events, not both"
                )
            if self._progress is not None:
                raise UsageError(
                    f"spawn(role={role!r}): progress is already watched on {self._progress.role!r}"
                )
            _check_regex(progress_pattern, f"spawn(role={role!r}): progress_pattern")
            self._progress = _Progress(
                log=(progress_log or str(stdout)) if progress_pattern is not None else None,
                pattern=progress_pattern,
                events=progress_events,
                role=role,
            )
        args = tuple(os.fspath(a) for a in argv)
        self._processes.append(ProcessSpec(
            role=role, argv=args, cwd=cwd, env=dict(env or {}), ready=ready,
        ))
        spawned = SpawnedProcess(role, args, stdout, self.run_dir / f"{role}.stderr")
        self._spawned.append(spawned)
        return spawned

    def scenario(
        self,
        plan: str | None = None,
        *,
        min_progress: int = 20,
        deadline: float = 15.0,
        max_lost: int = 0,
        max_client_errors: int = 0,
        criu: Mapping[str, Any] | CriuSpec | None = None,
        features: Sequence[str] = (),
    ) -> Scenario:
        """The scenario run() would run: what a scenario file would say, built in memory."""
        if not self._processes:
            raise UsageError("run(): no process to migrate (call spawn() first)")
        if self._progress is None:
            raise UsageError(
                "run(): no way to see progress: pass progress_pattern= (or progress_events=) "
                "to one spawn()"
            )
        expect = self._expect or Expectation(max_lost=max_lost, max_client_errors=max_client_errors)
        return Scenario(
            name=self.name,
            path=self._base,
            processes=tuple(self._processes),
            expect=expect,
            verify=Verify(
                events=self._progress.events,
                log=self._progress.log,
                pattern=self._progress.pattern,
                min_progress=min_progress,
                deadline=deadline,
            ),
            plan=plan or DEFAULT_PLAN,
            criu=_criu_spec(criu),
            builds=tuple(self._builds),
            features=tuple(features),
        )

    def run(
        self,
        plan: str | None = None,
        *,
        iterations: int = 1,
        min_progress: int = 20,
        deadline: float = 15.0,
        max_lost: int = 0,
        max_client_errors: int = 0,
        criu: Mapping[str, Any] | CriuSpec | None = None,
        features: Sequence[str] = (),
        check: bool = True,
    ) -> ScenarioResult:
        """Start the processes, migrate them ``iterations`` times by ``plan`` (server-first by
        default) and verify; return the result.

        ``criu`` takes what a scenario's ``[criu]`` table takes, ``{"dump": {"ext_unix_sk":
        True}}`` say; ``features`` what a scenario's ``features`` takes (``["cuda"]``): the
        test is skipped, naming the missing piece, where one is missing. With ``check`` (the
        default) a migration that does not end as expected fails the test; with
        ``check=False`` the result is returned for the test to judge.
        """
        if self.result is not None:
            raise UsageError("run() once per test: use iterations= to migrate several times")
        scenario = self.scenario(
            plan, min_progress=min_progress, deadline=deadline, max_lost=max_lost,
            max_client_errors=max_client_errors, criu=criu, features=features,
        )
        # keep="always": the fixture decides at teardown, by the test's own outcome.
        run = ScenarioRun(scenario, self.backend, iterations=iterations, keep="always",
                          run_dir=self._rundir)
        self.result = result = run.run()
        record_properties(self._properties, result)
        if result.outcome == "skipped":
            pytest.skip(result.reason)
        if self._expect is not None:
            if result.outcome == "xpassed":
                pytest.fail(f"[XPASS(strict)] {result.reason}", pytrace=False)
            if result.outcome != "xfailed":
                pytest.fail(f"migration {result.outcome}: {result.reason}", pytrace=False)
        elif check and not result.ok:
            pytest.fail(f"migration {result.outcome}: {result.reason}", pytrace=False)
        return result

    @property
    def processes(self) -> list[SpawnedProcess]:
        return list(self._spawned)

    def _finish(self, test_failed: bool) -> None:
        keep = self.settings.keep == "always" or (self.settings.keep == "failed" and test_failed)
        if not keep:
            self._rundir.remove()


def _check_regex(pattern: str | None, what: str) -> None:
    if pattern is None:
        return
    try:
        re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"{what}: bad regular expression: {exc}") from None


def _criu_spec(criu: Mapping[str, Any] | CriuSpec | None) -> CriuSpec:
    """A CriuSpec from the [criu]-table shape: flags for every action, and per action."""
    if criu is None:
        return CriuSpec()
    if isinstance(criu, CriuSpec):
        return criu
    tables: dict[str, dict[str, Any]] = {"common": {}, "dump": {}, "restore": {}}
    for key, value in criu.items():
        if key in ("dump", "restore"):
            if not isinstance(value, Mapping):
                raise UsageError(f"criu[{key!r}] must be a mapping of CRIU options")
            tables[key] = dict(value)
        else:
            tables["common"][key] = value
    for where, table in tables.items():
        unknown = sorted(set(table) - set(_CRIU_KEYS))
        if unknown:
            raise UsageError(
                f"criu options: unknown {', '.join(unknown)}"
                + (f" (in {where})" if where != "common" else "")
                + f"; expected: {', '.join(_CRIU_KEYS)}"
            )
    return CriuSpec(common=tables["common"], dump=tables["dump"], restore=tables["restore"])


def _short_name(nodename: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", nodename).strip("-")[:_NAME_MAX] or "test"


def _xfail_expectation(item: pytest.Item) -> Expectation | None:
    marker = item.get_closest_marker("criu_xfail")
    if marker is None:
        return None
    signature = marker.kwargs.get("signature", marker.args[0] if marker.args else None)
    action = marker.kwargs.get("action", "dump")
    if not isinstance(signature, str) or not signature:
        raise UsageError("criu_xfail needs signature='...' (a text of CRIU's error line)")
    if action not in ("dump", "restore"):
        raise UsageError(f"criu_xfail: action must be 'dump' or 'restore', not {action!r}")
    return Expectation(outcome="fails", action=action, signature=signature)


@pytest.fixture
def migration(
    request: pytest.FixtureRequest, criu_settings: CriuSettings
) -> Iterator[MigrationFixture]:
    """Declare your own processes, migrate them with CRIU and get the result."""
    backend = require_criu(criu_settings)
    item = request.node
    fixture = MigrationFixture(
        _short_name(item.name),
        Path(item.path),
        criu_settings,
        backend,
        expect=_xfail_expectation(item),
        properties=item.user_properties,
    )
    item.stash[FIXTURE] = fixture
    try:
        yield fixture
    finally:
        report = item.stash.get(CALL_REPORT, None)
        fixture._finish(test_failed=report is None or report.failed)


