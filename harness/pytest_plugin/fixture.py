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
from harness.pytest_plugin import arguments, xfail
from harness.pytest_plugin.reporting import record_properties
from harness.pytest_plugin.settings import (
    CALL_REPORT,
    FIXTURE,
    CriuSettings,
    require_criu,
)
from harness.result import Keep, Outcome, ScenarioResult
from harness.rundir import RunDir
from harness.runner import ScenarioRun
from harness.scenario import (
    Build,
    CriuSpec,
    Expectation,
    ProcessSpec,
    Scenario,
    Verify,
)

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
        # The role whose output shows progress, and how (the keys of a [verify] table).
        self._progress: tuple[str, dict[str, Any]] | None = None
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
        if any(p.role == role for p in self._processes):
            raise UsageError(f"spawn(): role {role!r} is used twice")
        stdout = self.run_dir / f"{role}.stdout"  # where harness.process writes its output
        ready = arguments.logged(stdout, socket=ready_socket, log=ready_log,
                                 pattern=ready_pattern, events=ready_events, delay=ready_delay)
        progress = arguments.logged(stdout, events=progress_events, log=progress_log,
                                    pattern=progress_pattern)
        if progress and self._progress is not None:
            raise UsageError(
                f"spawn(role={role!r}): progress is already watched on {self._progress[0]!r}"
            )
        args = tuple(os.fspath(a) for a in argv)
        keys: dict[str, Any] = {"role": role, "argv": args, "cwd": cwd, "env": dict(env or {})}
        if ready:
            keys["ready"] = {**ready, "timeout": ready_timeout}
        # ready_pattern names the log kind, unless ready_log is given too (so for progress).
        problems = arguments.problems(ready_log is not None, progress_log is not None)
        spec = ProcessSpec.from_keys(keys, problems)
        if progress:
            Verify.from_keys(progress, problems.at("progress"))
        arguments.check(f"spawn(role={role!r})", problems)
        assert spec is not None
        self._processes.append(spec)
        if progress:
            self._progress = (role, progress)
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
        problems = arguments.problems()
        verify = Verify.from_keys(
            {**self._progress[1], "min_progress": min_progress, "deadline": deadline},
            problems.at("progress"),
        )
        if not isinstance(criu, CriuSpec):
            criu = CriuSpec.from_keys(criu or {}, problems.at("criu"))
        arguments.check("run()", problems)
        assert verify is not None
        expect = self._expect or Expectation(max_lost=max_lost, max_client_errors=max_client_errors)
        return Scenario(
            name=self.name,
            path=self._base,
            processes=tuple(self._processes),
            expect=expect,
            verify=verify,
            plan=plan or DEFAULT_PLAN,
            criu=criu,
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
        isolation: str | None = None,
        transport: str = "local",
        safe_handover: bool = False,
    ) -> ScenarioResult:
        """Start the processes, migrate them ``iterations`` times by ``plan`` (server-first by
        default) and verify; return the result.

        ``criu`` takes what a scenario's ``[criu]`` table takes, ``{"dump": {"ext_unix_sk":
        True}}`` say; ``features`` what a scenario's ``features`` takes (``["cuda"]``): the
        test is skipped, naming the missing piece, where one is missing. ``isolation``
        ("none", "ns", "ns+net") overrides ``--criu-isolation``; ``transport`` ("local",
        "page-server", "lazy") and ``safe_handover`` are the command line's ``--transport``
        and ``--safe-handover``. With ``check`` (the
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
                          run_dir=self._rundir, isolation=isolation or self.settings.isolation,
                          transport=transport, safe_handover=safe_handover)
        self.result = result = run.run()
        record_properties(self._properties, result)
        if result.outcome is Outcome.SKIPPED:
            pytest.skip(result.reason)
        if self._expect is not None:
            xfail.check(result)
        elif check and not result.ok:
            pytest.fail(f"migration {result.outcome}: {result.reason}", pytrace=False)
        return result

    @property
    def processes(self) -> list[SpawnedProcess]:
        return list(self._spawned)

    def _finish(self, test_failed: bool) -> None:
        if not Keep(self.settings.keep).keeps(Outcome.FAILED if test_failed else Outcome.PASSED):
            self._rundir.remove()


def _short_name(nodename: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", nodename).strip("-")[:_NAME_MAX] or "test"


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
        expect=xfail.expected_failure(item),
        properties=item.user_properties,
    )
    item.stash[FIXTURE] = fixture
    try:
        yield fixture
    finally:
        report = item.stash.get(CALL_REPORT, None)
        fixture._finish(test_failed=report is None or report.failed)


