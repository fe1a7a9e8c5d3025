"""What a process could see change across a migration: two fingerprints compared, field by
field, and the looks of one migration taken at the right moments."""

from __future__ import annotations

import resource
from collections.abc import Iterable
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Any

from harness.errors import WorkloadError
from harness.fields import Fields, JsonObject
from harness.fingerprint import Fingerprint, take_tree
from harness.proctree import tree_stopped
from harness.waiting import poll

__all__ = ["Difference", "Inspection", "describe", "diff", "diff_trees"]


@dataclass(frozen=True)
class Difference:
    """One thing that changed across the migration; ``process`` names the role (and the pid)."""

    process: str
    field: str
    before: str
    after: str
    allowed: bool = False  # the scenario's allowed_differences name it: reported, not failed

    def __str__(self) -> str:
        return f"{self.process}: {self.change}"

    @property
    def change(self) -> str:
        """The difference without the process: what allowed_differences patterns match."""
        return f"{self.field}: {self.before} -> {self.after}"

    def allowed_by(self, patterns: Iterable[str]) -> bool:
        return any(fnmatchcase(self.change, p) for p in patterns)

    def judged(self, patterns: Iterable[str]) -> Difference:
        """This difference, marked allowed if one of the patterns names it."""
        return replace(self, allowed=self.allowed_by(patterns))

    def to_json(self) -> JsonObject:
        return {"process": self.process, "field": self.field, "before": self.before,
                "after": self.after, "allowed": self.allowed}

    @classmethod
    def from_json(cls, f: Fields) -> Difference:
        return cls(f.text("process"), f.text("field"), f.text("before"), f.text("after"),
                   f.boolean("allowed", False))


def diff(before: Fingerprint, after: Fingerprint, process: str = "") -> list[Difference]:
    """Everything that differs between two fingerprints of the same process."""
    who = process or str(before.pid)
    out: list[Difference] = []

    def differ(name: str, a: object, b: object) -> None:
        if a != b:
            out.append(Difference(who, name, _show(a), _show(b)))

    differ("pid", before.pid, after.pid)
    differ("cmdline", " ".join(before.cmdline), " ".join(after.cmdline))
    differ("cwd", before.cwd, after.cwd)
    differ("state", before.state, after.state)
    for fd in sorted(before.fds.keys() | after.fds.keys()):
        a, b = before.fds.get(fd), after.fds.get(fd)
        differ(f"fd {fd}", a.describe() if a else None, b.describe() if b else None)
    for key in sorted(before.maps.keys() | after.maps.keys()):
        differ(f"maps {key[1]} {key[0]}", before.maps.get(key), after.maps.get(key))
    for name in sorted(before.rlimits.keys() | after.rlimits.keys()):
        differ(f"rlimit {name}", before.rlimits.get(name), after.rlimits.get(name))
    return out


def diff_trees(
    before: dict[int, Fingerprint], after: dict[int, Fingerprint], role: str
) -> list[Difference]:
    """Differences between two fingerprints of a process tree, matched by pid (CRIU keeps pids)."""
    out: list[Difference] = []
    for pid in sorted(before.keys() | after.keys()):
        who = f"{role} (pid {pid})"
        a, b = before.get(pid), after.get(pid)
        if a is None or b is None:
            out.append(Difference(who, "process", "present" if a else "absent",
                                  "present" if b else "absent"))
            continue
        out.extend(diff(a, b, who))
    return out


def _show(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, tuple) and len(value) == 2:
        return f"{_limit(value[0])}/{_limit(value[1])}"
    return str(value)


def _limit(value: object) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


def describe(differences: Iterable[Difference]) -> str:
    """Differences for a reason line, one field after the other."""
    return "; ".join(str(d) for d in differences)


class Inspection:
    """The before and after looks of one migration, as Migration hooks.

    Roles the plan does not freeze run on while being looked at and after their restore, so
    their state letter and file offsets change by themselves: for those only what a running
    process keeps is compared."""

    def __init__(self, frozen: Iterable[str]) -> None:
        self.frozen = set(frozen)
        self.before: dict[str, dict[int, Fingerprint]] = {}
        self.after: dict[str, dict[int, Fingerprint]] = {}
        self.problems: list[Difference] = []

    def before_dump(self, role: str, workload: Any) -> None:
        self._look(self.before, role, workload.pid)

    def after_restore(self, role: str, workload: Any) -> None:
        if role in self.frozen:
            # CRIU hands a task dumped stopped back with SIGSTOP pending: for a moment after
            # the restore returns it is runnable (R), on its way to the stop, before any of
            # its own code runs. Compare the settled state.
            # Still not stopped after that: the state difference will say so.
            poll(lambda: tree_stopped(workload.pid), timeout=1.0, interval=0.0002)
        self._look(self.after, role, workload.pid)

    def _look(self, into: dict[str, dict[int, Fingerprint]], role: str, pid: int) -> None:
        try:
            tree = take_tree(pid)
        except WorkloadError as exc:
            # Not the migration's failure to report here: the dump or the progress check
            # will say the process is gone. Keep why the look failed as evidence.
            self.problems.append(Difference(role, "fingerprint", "", str(exc)))
            return
        if role not in self.frozen:
            tree = {pid: fp.running() for pid, fp in tree.items()}
        into[role] = tree

    def differences(self) -> list[Difference]:
        """What differs, for every role looked at both before its dump and after its restore."""
        out = list(self.problems)
        for role, before in self.before.items():
            if role in self.after:
                out.extend(diff_trees(before, self.after[role], role))
        return out
