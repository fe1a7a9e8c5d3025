"""What a test declares through the ``migration`` fixture: its processes, how to see them
progress, and the migration to run; built into a Scenario and run by the core's runner."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.criu import Backend
from harness.errors import UsageError
from harness.plan import DEFAULT_PLAN
from harness.pytest_plugin import arguments, xfail
from harness.pytest_plugin.reporting import record_properties
from harness.pytest_plugin.settings import CriuSettings
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

__all__ = ["MigrationFixture", "SpawnedProcess"]

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
        pidfile: str | None = None,
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
        A daemon gives its ``pidfile``: its launcher must exit 0, and the process the file
        names is then the workload (tracked, frozen, dumped and restored in its place).
        """
        if self.result is not None:
            raise UsageError("spawn() after run(): declare every process first")
        if any(p.role == role for p in self._processes):
            raise UsageError(f"spawn(): role {role!r} is used twice")
        stdout = self.run_dir / f"{role}.stdout"  # where harness.process writes its output
        ready = arguments.logged(stdout, socket=ready_socket, log=ready_log,
                                 pattern=ready_pattern, events=ready_events, delay=ready_delay,
                                 pidfile=pidfile)
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

    def self_check(
        self,
        signal: str = "SIGTERM",
        *,
        exit_status: int | None = None,
        file: str | None = None,
        pattern: str | None = None,
        settle: float = 0.5,
    ) -> None:
        """The processes check themselves: after the last restore (and ``settle`` seconds of
        running after each) each gets ``signal``, must exit with ``exit_status`` and/or leave
        ``file`` holding a line matching ``pattern`` (say ``"^PASS"``). In place of a
        progress_* argument to spawn()."""
        if self._progress is not None:
            raise UsageError(
                f"self_check(): progress is already watched on {self._progress[0]!r}"
            )
        keys = arguments.given(signal=signal, exit_status=exit_status, file=file,
                               pattern=pattern, settle=settle)
        problems = arguments.problems()
        Verify.from_keys(keys, problems.at("self_check"))
        arguments.check("self_check()", problems)
        self._progress = ("*", keys)

    def scenario(
        self,
        plan: str | None = None,
        *,
        min_progress: int = 20,
        deadline: float = 15.0,
        max_lost: int = 0,
        max_client_errors: int = 0,
        allowed_differences: Sequence[str] = (),
        criu: Mapping[str, Any] | CriuSpec | None = None,
        features: Sequence[str] = (),
    ) -> Scenario:
        """The scenario run() would run: what a scenario file would say, built in memory."""
        if not self._processes:
            raise UsageError("run(): no process to migrate (call spawn() first)")
        if self._progress is None:
            raise UsageError(
                "run(): no way to see progress: pass progress_pattern= (or progress_events=) "
                "to one spawn(), or call self_check()"
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
        expect = self._expect or Expectation(
            max_lost=max_lost,
            max_client_errors=max_client_errors,
            allowed_differences=tuple(allowed_differences),
        )
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
        allowed_differences: Sequence[str] = (),
        criu: Mapping[str, Any] | CriuSpec | None = None,
        features: Sequence[str] = (),
        isolation: str | None = None,
        transport: str = "local",
        safe_handover: bool = False,
        check: bool = True,
    ) -> ScenarioResult:
        """Start the processes, migrate them ``iterations`` times by ``plan`` (server-first by
        default) and verify; return the result.

        ``allowed_differences`` are what a scenario's ``[expect]`` takes: visible-state
        differences, as fnmatch patterns on "FIELD: BEFORE -> AFTER", that are reported but do
        not fail. ``criu`` takes what a scenario's ``[criu]`` table takes, ``{"dump":
        {"ext_unix_sk": True}}`` say; ``features`` what a scenario's ``features`` takes (``["cuda"]``): the
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
            max_client_errors=max_client_errors, allowed_differences=allowed_differences,
            criu=criu, features=features,
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
