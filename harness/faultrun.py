"""One case of the fault matrix: the scenario run with CRIU's fault injected, then every
expectation of ``harness.faults`` checked on what the run did and what it left.

The run itself judges the migration (the expected failure by its signature, the rollback and
the workload going on, or the verified migration); this adds what a plain run does not ask:
that the fault acted (its trace in CRIU's log), that nothing was lost across a rollback, that a
failed restore kept its evidence, and that nothing of the run is left, process or cgroup.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import psutil

from harness import cgroup
from harness.artifacts import CALLS, SIGNATURES, bundle
from harness.criu import Backend, yard
from harness.evidence import RESULT
from harness.faults import Effect, FaultCase
from harness.result import Keep, Outcome, ScenarioResult
from harness.rundir import RunDir, private_dir
from harness.runner import ScenarioRun
from harness.scenario import Scenario

__all__ = ["check", "leftovers", "run_case"]


def run_case(
    case: FaultCase,
    backend: Backend,
    bundle_into: Path | None = None,
    scenario: Scenario | None = None,
) -> ScenarioResult:
    """Run case under backend and check it; the run directory stays when the result is not as
    expected, or holds a failed restore's evidence (packed into bundle_into, if given)."""
    variant = scenario or case.variant(case.load())
    run_dir = RunDir(variant.name)
    # Kept whatever happens until checked: the trace and the evidence are read from it.
    result = ScenarioRun(variant, backend, keep=Keep.ALWAYS, run_dir=run_dir).run()
    result.fault = case.record()
    if result.outcome is not Outcome.SKIPPED:
        if problems := check(case, result, run_dir.path):
            result.outcome = Outcome.FAILED
            result.reason = "; ".join([*([result.reason] if result.reason else []), *problems])
        elif result.ok:
            result.reason = f"{result.reason}; every expectation of fault {case.code} met"
    if result.ok and case.effect is not Effect.RESTORE_FAILS:
        run_dir.remove()
        result.artifacts = ""
        return result
    (run_dir.path / RESULT).write_text(json.dumps(result.to_json(), indent=2))
    if bundle_into is not None:
        private_dir(bundle_into)
        result.bundle = str(bundle(run_dir.path, bundle_into / f"{run_dir.path.name}.tar.gz"))
    return result


def check(case: FaultCase, result: ScenarioResult, run_dir: Path) -> list[str]:
    """What does not hold of case's expectations, as one phrase each (none: all hold)."""
    problems: list[str] = []
    # A run that could not start (an error of the harness) never reached the fault.
    ran = result.outcome is not Outcome.ERROR
    if ran and case.trace and not _logged(run_dir / "images", _logs(case.inject), case.trace):
        problems.append(f"the fault did not show: no {case.trace!r} in the "
                        f"{' or '.join(_logs(case.inject))} of this run")
    if case.effect is Effect.DUMP_FAILS and (result.messages_lost or result.client_errors):
        problems.append(f"after the rollback: {result.messages_lost} lost, "
                        f"{result.client_errors} client error(s) (expected none)")
    if case.effect is Effect.RESTORE_FAILS and result.ok:
        problems += _evidence(case, result, run_dir)
    if case.effect is Effect.MIGRATES and result.ok:
        seen = [d for c in result.cycles for d in c.differences]
        for pattern in case.differences:
            if not any(d.allowed_by([pattern]) for d in seen):
                problems.append(f"no visible difference {pattern!r}: the fault did not show")
    if left := leftovers(run_dir):
        problems.append(f"left after the run: {'; '.join(left)}")
    return problems


def _logs(inject: str) -> list[str]:
    return ["dump.log", "restore.log"] if inject == "both" else [f"{inject}.log"]


def _logged(directory: Path, names: Iterable[str], text: str) -> bool:
    """Whether a log of one of these names under directory holds text."""
    for name in names:
        for log in directory.rglob(name):
            with log.open(errors="replace") as f:
                if any(text in line for line in f):
                    return True
    return False


def _evidence(case: FaultCase, result: ScenarioResult, run_dir: Path) -> list[str]:
    """A failed restore's evidence, complete: the images it was given, its log with the
    signature, and the run's own record of it, so that `criu-harness restore` can retry it."""
    failed = [c for cyc in result.cycles for c in cyc.calls if c.action == "restore" and c.error]
    if not failed:
        return ["no failed restore in the run's record"]
    call = failed[-1]
    images = call.log_path.parent
    problems = []
    missing = [name for name in ("pstree.img", "inventory.img", "core-*.img", "pages-*.img")
               if not any(images.glob(name))]
    if missing:
        problems.append(f"images of the failed restore missing in {images}: {', '.join(missing)}")
    if not call.log_path.is_file():
        problems.append(f"no restore log {call.log_path}")
    elif case.signature and not _logged(images, [call.log_path.name], case.signature):
        problems.append(f"{call.log_path} does not hold {case.signature!r}")
    problems += [f"no {name} in the kept run directory" for name in (CALLS, SIGNATURES)
                 if not (run_dir / name).is_file()]
    return problems


def leftovers(run_dir: Path) -> list[str]:
    """What of the run in run_dir is still there: its processes (any whose command line or
    working directory is in it, stopped ones included; not zombies), its cgroup, and mounts
    a killed CRIU left in it."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
        info = proc.info
        text = " ".join(info["cmdline"] or []) + " " + (info["cwd"] or "")
        if str(run_dir) in text and info["status"] != psutil.STATUS_ZOMBIE:
            command = " ".join(info["cmdline"] or [])[:80]
            found.append(f"pid {info['pid']} ({info['status']}): {command}")
    top = cgroup.root()
    if top is not None:
        group = top / cgroup.BASE / f"{os.getpid()}.{run_dir.name}"
        if group.exists():
            found.append(f"cgroup {group}")
    found += [f"CRIU's cgroup yard mounted at {y}" for y in yard.yards(run_dir)]
    return found
