"""Scenario files: loading and validating them, and finding the built-in ones.

Loading validates all of a file first and reports every problem as ``file:line: field: what is
wrong``; nothing is started from a scenario that has one.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from harness import readiness
from harness.errors import UsageError
from harness.isolation import Isolation
from harness.plan import DEFAULT_PLAN, PLANS
from harness.problems import Keys
from harness.scenario import expectations
from harness.scenario.checker import Checker
from harness.scenario.model import (
    CRIU_FLAGS,
    Build,
    CriuSpec,
    ProcessSpec,
    Scenario,
    Verify,
)

# harness/scenarios links to the checkout's scenarios/, and is a copy of it in a wheel.
SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"


class ScenarioError(UsageError):
    """A scenario file is malformed; ``problems`` holds one ``file:line: field: why`` each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


_TOP = {
    "name": str, "description": str, "plan": str, "features": list, "process": list,
    "build": list, "criu": dict, "expect": dict, "verify": dict, "mechanism": str,
    "isolation": str,
}
_PROCESS = {"role": str, "argv": list, "cwd": str, "env": dict, "ready": dict}
_BUILD = {"sources": list, "output": str, "flags": list}
_CRIU_ACTION = {
    **{flag: bool for flag in CRIU_FLAGS}, "network_lock": str, "extra_args": list,
    "timeout": float, "fault": int, "plugins": list,
}
_CRIU = {**_CRIU_ACTION, "dump": dict, "restore": dict}
_VERIFY = {
    "events": str, "log": str, "pattern": str, "min_progress": int, "deadline": float,
    "signal": str, "settle": float, "exit_status": int, "file": str,
}


def load(path: Path) -> Scenario:
    """Load and validate a scenario file; raise ScenarioError listing every problem."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError([f"{path}:0: file: cannot read: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = m.group(1) if m else "1"
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ScenarioError([f"{path}:{line}: toml: syntax error: {msg}"]) from None
    check = Checker(path, text)
    scenario = _scenario(check, path, data)
    if check.problems or scenario is None:
        raise ScenarioError(check.problems)
    return scenario


def _scenario(check: Checker, path: Path, data: dict[str, Any]) -> Scenario | None:
    top = check.table(data, (), _TOP, required=("name", "process", "expect", "verify"))
    if "name" in top:
        check.identifier(top["name"], "name")
    processes = [
        proc
        for i, raw in enumerate(top.get("process", []))
        if (proc := _process(check, raw, ("process", i))) is not None
    ]
    if "process" in top and not top["process"]:
        check.add(("process",), "must list at least one process")
    roles = [p.role for p in processes]
    for role in {r for r in roles if roles.count(r) > 1}:
        check.add(("process",), f"role {role!r} is used twice")
    builds = tuple(
        b for i, raw in enumerate(top.get("build", [])) if (b := _build(check, raw, ("build", i)))
    )
    plan = top.get("plan", DEFAULT_PLAN)
    if plan not in PLANS:
        check.add(("plan",), f"unknown plan {plan!r} (expected one of: {', '.join(PLANS)})")
    expects = expectations.read(check, top.get("expect", {}))
    expect = expects.base
    verify = _verify(check, top.get("verify", {}))
    criu = _criu(check, top.get("criu", {}))
    features = tuple(check.strings(top.get("features", []), ("features",), nonempty=False))
    isolation = top.get("isolation")
    if isolation is not None and isolation not in tuple(Isolation):
        check.add(("isolation",), f"must be one of {', '.join(Isolation)}, not {isolation!r}")
    if check.problems or expect is None or verify is None:
        return None
    return Scenario(
        name=top["name"],
        path=path.resolve(),
        description=top.get("description", ""),
        processes=tuple(processes),
        plan=plan,
        expect=expect,
        plan_expect=expects.per_plan,
        verify=verify,
        criu=criu,
        builds=builds,
        features=features,
        mechanism=top.get("mechanism", ""),
        criu_expect=expects.per_criu,
        alternative=expects.alternative,
        isolation=isolation,
    )


def _process(check: Checker, raw: Any, where: Keys) -> ProcessSpec | None:
    p = check.table(raw, where, _PROCESS, required=("role", "argv"))
    if p.get("argv") and not check.strings(p["argv"], (*where, "argv"), nonempty=False):
        del p["argv"]  # not a list of strings: said so (an empty one, ProcessSpec says)
    if "ready" in p:
        p["ready"] = check.table(p["ready"], (*where, "ready"), readiness.KEYS)
    return ProcessSpec.from_keys(p, check.at(*where))


def _build(check: Checker, raw: Any, where: tuple[str | int, ...]) -> Build | None:
    b = check.table(raw, where, _BUILD, required=("sources", "output"))
    sources = check.strings(b["sources"], (*where, "sources")) if "sources" in b else []
    flags = check.strings(b.get("flags", []), (*where, "flags"), nonempty=False)
    if not sources or "output" not in b:
        return None
    return Build(sources=tuple(sources), output=b["output"], flags=tuple(flags))


def _criu(check: Checker, raw: Any) -> CriuSpec:
    criu = check.table(raw, ("criu",), _CRIU)
    for action in ("dump", "restore"):
        if action in criu:
            criu[action] = check.table(criu[action], ("criu", action), _CRIU_ACTION)
    return CriuSpec.from_keys(criu, check.at("criu"))


def _verify(check: Checker, raw: Any) -> Verify | None:
    return Verify.from_keys(check.table(raw, ("verify",), _VERIFY), check.at("verify"))


# --- finding scenarios ------------------------------------------------------------------------


def builtin_paths() -> list[Path]:
    """scenarios/*.toml, then the atlas's scenarios/atlas/*.toml (not run by `pytest scenarios/`
    as a whole: tests/integration/test_atlas.py runs a sample)."""
    return sorted(SCENARIO_DIR.glob("*.toml")) + sorted(SCENARIO_DIR.glob("atlas/*.toml"))


def find(name_or_path: str) -> Scenario:
    """A scenario by built-in name (``dgram-echo``) or by the path of a scenario file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or "/" in name_or_path:
        if not candidate.exists():
            raise UsageError(f"{name_or_path}: no such scenario file")
        return load(candidate)
    path = next((p for p in builtin_paths() if p.stem == name_or_path), None)
    if path is None:
        known = ", ".join(p.stem for p in builtin_paths())
        raise UsageError(f"unknown scenario {name_or_path!r} (built-in: {known})")
    return load(path)
