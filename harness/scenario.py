"""Scenarios: which processes to start, how to migrate them, and what must happen.

A scenario is a TOML file (the built-in ones live in ``scenarios/``). Loading validates all of
it first and reports every problem as ``file:line: field: what is wrong``; nothing is started
from a scenario that has one.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.criu.options import NETWORK_LOCKS, CriuOptions
from harness.criu.version import VersionSpecError, check_spec
from harness.criu.version import matches as version_matches
from harness.errors import UsageError
from harness.plan import DEFAULT_PLAN, PLANS

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
PLACEHOLDERS = ("run_dir", "python", "scenario_dir", "name")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
CRIU_FLAGS = ("shell_job", "ext_unix_sk", "tcp_established", "leave_stopped")


class ScenarioError(UsageError):
    """A scenario file is malformed; ``problems`` holds one ``file:line: field: why`` each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Ready:
    """When a process counts as started: a socket exists, a log line matches, its event log
    shows a round trip, or (last resort) a delay has passed."""

    socket: str | None = None
    log: str | None = None
    pattern: str | None = None
    events: str | None = None
    delay: float | None = None
    timeout: float = 10.0


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
    ready: Ready = Ready()


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
    """What must happen: the migration succeeds; or CRIU fails by ``action`` with a log line
    containing ``signature``; or ("breaks") CRIU dumps and restores without a complaint but
    the IPC does not come back, and the client's first error contains ``signature``."""

    outcome: str = "migrates"  # or "fails", "breaks"
    action: str | None = None
    signature: str | None = None
    max_lost: int = 0
    max_client_errors: int = 0
    max_duplicates: int = 0
    # Visible-state differences CRIU is known to cause here, as fnmatch patterns on
    # "FIELD: BEFORE -> AFTER" (harness.fingerprint): reported, but they do not fail a cycle.
    allowed_differences: tuple[str, ...] = ()

    @property
    def expected(self) -> str:
        return self.outcome


@dataclass(frozen=True)
class Verify:
    """How to tell that the workload runs: the client's echo event log, or new lines of a log
    matching a pattern (for programs that write no events)."""

    events: str | None = None
    log: str | None = None
    pattern: str | None = None
    min_progress: int = 20
    deadline: float = 15.0


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
        """Replace the placeholders ({run_dir}, {python}, {scenario_dir}, {name}) in text."""
        values = {
            "run_dir": str(run_dir),
            "python": sys.executable,
            "scenario_dir": str(self.path.parent),
            "name": self.name,
        }
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


# --- loading and validation -------------------------------------------------------------------


class _Lines:
    """Where each key of a TOML file is written, to point a problem at its line."""

    def __init__(self, text: str) -> None:
        self.where: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        arrays: dict[tuple[str, ...], int] = {}
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if m := re.match(r"^\[\[\s*([^\]]+?)\s*\]\]", line):
                name = tuple(_key_parts(m.group(1)))
                arrays[name] = arrays.get(name, -1) + 1
                table = (*name, str(arrays[name]))
                self.where.setdefault(table, lineno)
                self.where.setdefault(name, lineno)
            elif m := re.match(r"^\[\s*([^\]]+?)\s*\]", line):
                table = tuple(_key_parts(m.group(1)))
                self.where.setdefault(table, lineno)
            elif m := re.match(r"^([A-Za-z0-9_.\"' -]+?)\s*=", line):
                self.where.setdefault((*table, *_key_parts(m.group(1))), lineno)

    def line(self, path: tuple[str, ...]) -> int:
        while path:
            if path in self.where:
                return self.where[path]
            path = path[:-1]
        return 1


def _key_parts(key: str) -> list[str]:
    return [p.strip().strip("\"'") for p in key.split(".")]


class _Checker:
    """Collects every problem of one file instead of stopping at the first."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = _Lines(text)
        self.problems: list[str] = []

    def problem(self, where: tuple[str | int, ...], message: str) -> None:
        keys = tuple(str(k) for k in where)
        name = ".".join(f"[{k}]" if k.isdigit() else k for k in keys).replace(".[", "[")
        self.problems.append(f"{self.path}:{self.lines.line(keys)}: {name or 'file'}: {message}")

    def table(
        self,
        data: Any,
        where: tuple[str | int, ...],
        allowed: Mapping[str, type | tuple[type, ...]],
        required: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Check a table's keys and value types; return only the valid entries."""
        if not isinstance(data, dict):
            self.problem(where, f"must be a table, not {_type_name(data)}")
            return {}
        good: dict[str, Any] = {}
        for key, value in data.items():
            if key not in allowed:
                self.problem((*where, key), f"unknown key (expected one of: {', '.join(allowed)})")
                continue
            want = allowed[key]
            if not _is(value, want):
                self.problem((*where, key), f"must be {_type_label(want)}, not {_type_name(value)}")
                continue
            good[key] = value
        for key in required:
            if key not in data:
                self.problem((*where, key), "missing (required)")
        return good

    def strings(self, value: Any, where: tuple[str | int, ...], nonempty: bool = True) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(where, "must be a list of strings")
            return []
        if nonempty and not value:
            self.problem(where, "must not be empty")
        return value

    def regex(self, value: str, where: tuple[str | int, ...]) -> None:
        try:
            re.compile(value)
        except re.error as exc:
            self.problem(where, f"bad regular expression: {exc}")

    def positive(self, value: float, where: tuple[str | int, ...], zero_ok: bool = False) -> None:
        if value < 0 or (value == 0 and not zero_ok):
            self.problem(where, f"must be {'at least 0' if zero_ok else 'greater than 0'}, not {value}")


def _is(value: Any, want: type | tuple[type, ...]) -> bool:
    kinds = want if isinstance(want, tuple) else (want,)
    if isinstance(value, bool):
        return bool in kinds
    if float in kinds and isinstance(value, int):
        return True
    return isinstance(value, kinds)


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _type_label(want: type | tuple[type, ...]) -> str:
    kinds = want if isinstance(want, tuple) else (want,)
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


_TOP = {
    "name": str, "description": str, "plan": str, "features": list, "process": list,
    "build": list, "criu": dict, "expect": dict, "verify": dict, "mechanism": str,
}
_PROCESS = {"role": str, "argv": list, "cwd": str, "env": dict, "ready": dict}
_READY = {"socket": str, "log": str, "pattern": str, "events": str, "delay": float, "timeout": float}
_BUILD = {"sources": list, "output": str, "flags": list}
_CRIU = {
    **{flag: bool for flag in CRIU_FLAGS},
    "network_lock": str, "extra_args": list, "dump": dict, "restore": dict,
}
_EXPECT = {
    "outcome": str, "action": str, "signature": str, "max_lost": int, "max_client_errors": int,
    "max_duplicates": int, "allowed_differences": list, "plan": dict, "criu": dict, "or": dict,
}
OUTCOMES = ("migrates", "fails", "breaks")
_VERIFY = {"events": str, "log": str, "pattern": str, "min_progress": int, "deadline": float}


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
    check = _Checker(path, text)
    scenario = _scenario(check, path, data)
    if check.problems or scenario is None:
        raise ScenarioError(check.problems)
    return scenario


def _scenario(check: _Checker, path: Path, data: dict[str, Any]) -> Scenario | None:
    top = check.table(data, (), _TOP, required=("name", "process", "expect", "verify"))
    processes = [
        proc
        for i, raw in enumerate(top.get("process", []))
        if (proc := _process(check, raw, ("process", i))) is not None
    ]
    if "process" in top and not top["process"]:
        check.problem(("process",), "must list at least one process")
    roles = [p.role for p in processes]
    for role in {r for r in roles if roles.count(r) > 1}:
        check.problem(("process",), f"role {role!r} is used twice")
    builds = tuple(
        b for i, raw in enumerate(top.get("build", [])) if (b := _build(check, raw, ("build", i)))
    )
    plan = top.get("plan", DEFAULT_PLAN)
    if plan not in PLANS:
        check.problem(("plan",), f"unknown plan {plan!r} (expected one of: {', '.join(PLANS)})")
    expect, plan_expect = _expectations(check, top.get("expect", {}))
    criu_expect = _criu_expectations(check, top.get("expect", {}), expect)
    alternative = None
    if isinstance(raw_or := top.get("expect", {}).get("or"), dict) and expect is not None:
        alternative = _expectation(check, raw_or, ("expect", "or"), expect)
        if alternative is not None and (alternative.outcome == "fails") == (expect.outcome == "fails"):
            check.problem(("expect", "or", "outcome"), "must differ from expect.outcome in whether CRIU fails")
    verify = _verify(check, top.get("verify", {}))
    criu = _criu(check, top.get("criu", {}))
    features = tuple(check.strings(top.get("features", []), ("features",), nonempty=False))
    if check.problems or expect is None or verify is None:
        return None
    return Scenario(
        name=top["name"],
        path=path.resolve(),
        description=top.get("description", ""),
        processes=tuple(processes),
        plan=plan,
        expect=expect,
        plan_expect=plan_expect,
        verify=verify,
        criu=criu,
        builds=builds,
        features=features,
        mechanism=top.get("mechanism", ""),
        criu_expect=criu_expect,
        alternative=alternative,
    )


def _process(check: _Checker, raw: Any, where: tuple[str | int, ...]) -> ProcessSpec | None:
    p = check.table(raw, where, _PROCESS, required=("role", "argv"))
    argv = check.strings(p["argv"], (*where, "argv")) if "argv" in p else []
    env = p.get("env", {})
    for key, value in env.items():
        if not isinstance(value, str):
            check.problem((*where, "env", key), f"must be a string, not {_type_name(value)}")
    ready = Ready()
    if "ready" in p:
        r = check.table(p["ready"], (*where, "ready"), _READY)
        kinds = [k for k in ("socket", "log", "events", "delay") if k in r]
        if len(kinds) != 1:
            check.problem((*where, "ready"), "must name exactly one of socket, log, events, delay")
        if "log" in r and "pattern" not in r:
            check.problem((*where, "ready", "pattern"), "missing (required with log)")
        if "pattern" in r:
            check.regex(r["pattern"], (*where, "ready", "pattern"))
        for key in ("delay", "timeout"):
            if key in r:
                check.positive(r[key], (*where, "ready", key))
        ready = Ready(**r)
    if "role" not in p or not argv:
        return None
    return ProcessSpec(role=p["role"], argv=tuple(argv), cwd=p.get("cwd"), env=dict(env), ready=ready)


def _build(check: _Checker, raw: Any, where: tuple[str | int, ...]) -> Build | None:
    b = check.table(raw, where, _BUILD, required=("sources", "output"))
    sources = check.strings(b["sources"], (*where, "sources")) if "sources" in b else []
    flags = check.strings(b.get("flags", []), (*where, "flags"), nonempty=False)
    if not sources or "output" not in b:
        return None
    return Build(sources=tuple(sources), output=b["output"], flags=tuple(flags))


def _criu(check: _Checker, raw: Any) -> CriuSpec:
    def section(data: Any, where: tuple[str, ...], nested: bool) -> dict[str, Any]:
        allowed = _CRIU if nested else {k: v for k, v in _CRIU.items() if k not in ("dump", "restore")}
        s = check.table(data, where, allowed)
        if "network_lock" in s and s["network_lock"] not in NETWORK_LOCKS:
            check.problem((*where, "network_lock"), f"must be one of {', '.join(NETWORK_LOCKS)}")
        if "extra_args" in s:
            check.strings(s["extra_args"], (*where, "extra_args"), nonempty=False)
        return s

    common = section(raw, ("criu",), nested=True)
    dump = section(common.pop("dump", {}), ("criu", "dump"), nested=False)
    restore = section(common.pop("restore", {}), ("criu", "restore"), nested=False)
    return CriuSpec(common=common, dump=dump, restore=restore)


def _expectation(
    check: _Checker, raw: Any, where: tuple[str, ...], base: Expectation | None
) -> Expectation | None:
    allowed = {k: v for k, v in _EXPECT.items() if base is None or k not in ("plan", "criu", "or")}
    e = check.table(raw, where, allowed, required=("outcome",) if base is None else ())
    for nested in ("plan", "criu", "or"):
        e.pop(nested, None)
    outcome = e.get("outcome", base.outcome if base else "migrates")
    if outcome not in OUTCOMES:
        check.problem((*where, "outcome"), f"must be 'migrates', 'fails' or 'breaks', not {outcome!r}")
    if "action" in e and e["action"] not in ("dump", "restore"):
        check.problem((*where, "action"), f"must be 'dump' or 'restore', not {e['action']!r}")
    for key in {"fails": ("action", "signature"), "breaks": ("signature",)}.get(outcome, ()):
        if key not in e and (base is None or getattr(base, key) is None):
            check.problem((*where, key), f"missing (required when outcome is {outcome!r})")
    for key in ("max_lost", "max_client_errors", "max_duplicates"):
        if key in e:
            check.positive(e[key], (*where, key), zero_ok=True)
    if "allowed_differences" in e:
        patterns = check.strings(e["allowed_differences"], (*where, "allowed_differences"))
        e["allowed_differences"] = tuple(patterns)
    if base is not None:
        return Expectation(**{**base.__dict__, **e})
    return Expectation(**e) if "outcome" in e else None


def _criu_expectations(
    check: _Checker, raw: Any, base: Expectation | None
) -> tuple[tuple[str, dict[str, Any]], ...]:
    """[expect.criu."SPEC"] tables: what changes on the CRIU versions SPEC matches."""
    versions = raw.get("criu", {}) if isinstance(raw, dict) else {}
    if not isinstance(versions, dict):
        check.problem(("expect", "criu"), f"must be a table, not {_type_name(versions)}")
        return ()
    found = []
    for spec, sub in versions.items():
        try:
            check_spec(spec)
        except VersionSpecError as exc:
            check.problem(("expect", "criu", spec), str(exc))
            continue
        if base is not None and (e := _expectation(check, sub, ("expect", "criu", spec), base)):
            found.append((spec, {k: getattr(e, k) for k in sub if k in _EXPECT}))
    return tuple(found)


def _expectations(check: _Checker, raw: Any) -> tuple[Expectation | None, dict[str, Expectation]]:
    base = _expectation(check, raw, ("expect",), None)
    per_plan: dict[str, Expectation] = {}
    plans = raw.get("plan", {}) if isinstance(raw, dict) else {}
    if not isinstance(plans, dict):
        check.problem(("expect", "plan"), f"must be a table, not {_type_name(plans)}")
        plans = {}
    for name, sub in plans.items():
        if name not in PLANS:
            check.problem(("expect", "plan", name), f"unknown plan (expected one of: {', '.join(PLANS)})")
            continue
        if base is not None and (e := _expectation(check, sub, ("expect", "plan", name), base)):
            per_plan[name] = e
    return base, per_plan


def _verify(check: _Checker, raw: Any) -> Verify | None:
    v = check.table(raw, ("verify",), _VERIFY)
    if ("events" in v) == ("log" in v):
        check.problem(("verify",), "must name exactly one of events (an echo event log) or log")
    if "log" in v and "pattern" not in v:
        check.problem(("verify", "pattern"), "missing (required with log)")
    if "pattern" in v:
        check.regex(v["pattern"], ("verify", "pattern"))
    if "min_progress" in v:
        check.positive(v["min_progress"], ("verify", "min_progress"))
    if "deadline" in v:
        check.positive(v["deadline"], ("verify", "deadline"))
    if check.problems:
        return None
    return Verify(**v)


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
