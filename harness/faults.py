"""CRIU's own fault injection, code by code: where each code acts, what it was seen to do here,
and what the harness requires of a run that injects it. ``harness.faultrun`` runs each case and
checks it; ``criu-harness matrix --faults`` runs them all, under each backend.

CRIU reads ``CRIU_FAULT=<code>`` from its environment (``criu/include/fault-injection.h``);
1-6 are meant to be fatal, 127 and up not. What each does below was observed with CRIU 4.2.1
on Linux 6.18, the same through both backends; a code that does nothing to a workload says so,
and why. Whatever the code, nothing of a run may be left after it (no process, no cgroup).

- ``Effect.DUMP_FAILS``: the dump fails with ``signature`` (in CRIU's error lines, or in the
  harness's ``killed by SIGNAL after: <last log line>`` when ``killed_by`` says CRIU dies of a
  signal); the migration rolls back, the workload goes on, and the client lost nothing.
- ``Effect.RESTORE_FAILS``: the restore fails with ``signature``; what CRIU made is gone, the
  workload is lost, and the evidence is kept: the run directory with the images and logs, the
  restore's log holding the signature.
- ``Effect.MIGRATES``: the migration succeeds and is verified (nothing lost), with exactly the
  visible-state ``differences`` named (each must show: it is how the fault shows itself).

``trace``, when set, is a line of the injected action's CRIU log that shows the fault acted: a
fault that migrates "fine" because it never fired is not a pass.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from harness import scenario as scenarios
from harness.errors import UsageError
from harness.result import InjectedFault
from harness.scenario import Scenario

__all__ = ["CASES", "FAULT_SCENARIO_DIR", "OBSERVED_WITH", "Effect", "FaultCase", "select"]

# Where each case's ``observed`` was seen; a newer CRIU may differ (the matrix then says so).
OBSERVED_WITH = "CRIU 4.2.1, Linux 6.18"

# Scenarios that exist for the fault matrix only (not built-in: `list` and the plan matrix
# leave them out).
FAULT_SCENARIO_DIR = scenarios.SCENARIO_DIR / "faults"


class Effect(StrEnum):
    DUMP_FAILS = "dump fails"
    RESTORE_FAILS = "restore fails"
    MIGRATES = "migrates"


@dataclass(frozen=True)
class FaultCase:
    """One fault code on one scenario, and what must hold."""

    code: int
    name: str  # CRIU's: FI_DUMP_EARLY
    inject: str  # the action(s) whose CRIU gets CRIU_FAULT: dump, restore or both
    effect: Effect
    observed: str  # what it does here, in words
    scenario: str = "dgram-echo"
    signature: str | None = None
    killed_by: str | None = None
    trace: str | None = None
    differences: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """The result's name: one per (scenario, code), a valid run directory name."""
        return f"{self.scenario}.fault-{self.code}"

    @property
    def failing_action(self) -> str | None:
        return {Effect.DUMP_FAILS: "dump", Effect.RESTORE_FAILS: "restore"}.get(self.effect)

    def expectation(self) -> str:
        """What must hold, in words (the report shows it next to the outcome)."""
        parts: list[str] = []
        if self.effect is Effect.MIGRATES:
            parts.append("migrates, nothing lost")
            if self.differences:
                shown = ", ".join(d.replace("[[]", "[") for d in self.differences)
                parts.append(f"visible differences {shown}")
        else:
            how = f" (CRIU killed by {self.killed_by})" if self.killed_by else ""
            parts.append(f"criu {self.failing_action} fails with {self.signature!r}{how}")
            if self.effect is Effect.DUMP_FAILS:
                parts.append("rolled back: the workload goes on, nothing lost")
            else:
                parts.append("images and logs kept, nothing restored left")
        if self.trace:
            parts.append(f"log shows {self.trace!r}")
        parts.append("nothing left after the run")
        return "; ".join(parts)

    def record(self) -> InjectedFault:
        return InjectedFault(self.code, self.name, self.inject, self.expectation(), self.observed)

    def load(self) -> Scenario:
        """The scenario to inject into: a fault-matrix one, else a built-in."""
        own = FAULT_SCENARIO_DIR / f"{self.scenario}.toml"
        return scenarios.load(own) if own.is_file() else scenarios.find(self.scenario)

    def variant(self, base: Scenario) -> Scenario:
        """base with the fault in its CRIU options and this case's expectation."""
        criu = base.criu
        if self.inject == "both":
            criu = replace(criu, common={**criu.common, "fault": self.code})
        elif self.inject == "dump":
            criu = replace(criu, dump={**criu.dump, "fault": self.code})
        else:
            criu = replace(criu, restore={**criu.restore, "fault": self.code})
        expect = base.expectation(base.plan)
        if self.effect is Effect.MIGRATES:
            expect = replace(
                expect, outcome="migrates", action=None, signature=None, killed_by=None,
                allowed_differences=(*expect.allowed_differences, *self.differences),
            )
        else:
            expect = replace(expect, outcome="fails", action=self.failing_action,
                             signature=self.signature, killed_by=self.killed_by)
        # The case's expectation alone: none per plan, per CRIU version, or as an alternative.
        return replace(base, name=self.id, criu=criu, expect=expect, plan_expect={},
                       criu_expect=(), alternative=None,
                       description=f"{base.description}; CRIU_FAULT={self.code} ({self.name})")


_NO_EFFECT = "does nothing here: "

# In code order. Every code of fault-injection.h is here; a code whose trigger a workload lacks
# also runs on one that has it, where one exists (4 on dgram-ghost, 136 on stream-echo).
CASES: tuple[FaultCase, ...] = (
    FaultCase(
        1, "FI_DUMP_EARLY", "dump", Effect.DUMP_FAILS,
        "CRIU SIGKILLs itself right after putting its parasite into the task",
        signature="fault: CRIU sudden detach", killed_by="SIGKILL",
    ),
    FaultCase(
        2, "FI_RESTORE_ROOT_ONLY", "restore", Effect.RESTORE_FAILS,
        "the restored root task SIGKILLs itself before forking its children",
        signature="killed by signal 9: Killed", trace="fault: Restore root task failure!",
    ),
    FaultCase(
        3, "FI_DUMP_PAGES", "dump", Effect.DUMP_FAILS,
        "dumping the memory pages fails",
        signature="fault: Dump VMA pages failure!",
    ),
    FaultCase(
        4, "FI_RESTORE_OPEN_LINK_REMAP", "restore", Effect.MIGRATES,
        _NO_EFFECT + "it acts on a remapped (deleted or linked-away) file, which dgram-echo "
        "does not hold",
    ),
    FaultCase(
        4, "FI_RESTORE_OPEN_LINK_REMAP", "restore", Effect.RESTORE_FAILS,
        "the task restoring the deleted file SIGKILLs itself as it opens it",
        scenario="dgram-ghost",
        signature="killed by signal 9: Killed", trace="fault: Open link-remap failure!",
    ),
    FaultCase(
        5, "FI_PARASITE_CONNECT", "dump", Effect.DUMP_FAILS,
        "the parasite's transport socket connection is refused",
        signature="Unable to connect a transport socket",
    ),
    FaultCase(
        6, "FI_POST_RESTORE", "restore", Effect.RESTORE_FAILS,
        "the restore is abandoned once every task is restored, and CRIU kills them; whether "
        "CRIU logs that kill is a race, so only its last error line is certain",
        signature="Restoring FAILED.",
    ),
    FaultCase(
        127, "FI_VDSO_TRAMPOLINES", "restore", Effect.MIGRATES,
        "the restored tasks get CRIU's vDSO proxy: two more anonymous mappings, which the "
        "visible-state check sees",
        trace="Runtime vdso mismatches dumpee, generate proxy",
        differences=("maps r--p [[]anon]: (none) -> *", "maps r-xp [[]anon]: (none) -> *"),
    ),
    FaultCase(
        128, "FI_CHECK_OPEN_HANDLE", "dump", Effect.MIGRATES,
        _NO_EFFECT + "it acts on inotify/fanotify watches, which dgram-echo has none of",
    ),
    FaultCase(
        129, "FI_NO_MEMFD", "dump", Effect.MIGRATES,
        "the parasite is loaded without memfd, by the older mmap way",
        trace="MemFD parasite doesn't work, goto legacy mmap",
    ),
    FaultCase(
        130, "FI_NO_BREAKPOINTS", "both", Effect.MIGRATES,
        "CRIU catches the end of its parasite and of the restore by tracing system calls "
        "instead of with a hardware breakpoint",
        trace="Force no-breakpoints restore",
    ),
    FaultCase(
        131, "FI_PARTIAL_PAGES", "restore", Effect.MIGRATES,
        _NO_EFFECT + "it halves asynchronous page reads spanning several buffers, and no read "
        "of these restores does (no '`- trim preadv' line)",
    ),
    FaultCase(
        132, "FI_HUGE_ANON_SHMEM_ID", "dump", Effect.MIGRATES,
        _NO_EFFECT + "it acts on anonymous shared mappings, which dgram-echo has none of",
    ),
    FaultCase(
        133, "FI_CANNOT_MAP_VDSO", "both", Effect.MIGRATES,
        "the restorer maps no vDSO of its own ('Mapping native vDSO' is missing from the "
        "restore log); nothing else shows",
    ),
    FaultCase(
        134, "FI_CORRUPT_EXTREGS", "dump", Effect.MIGRATES,
        "the parasite corrupts the task's extended registers (xsave) and CRIU puts them "
        "back: the task goes on unharmed",
        trace="Corrupting xsave for",
    ),
    FaultCase(
        135, "FI_DONT_USE_PAGEMAP_SCAN", "dump", Effect.MIGRATES,
        "memory is scanned through /proc/PID/pagemap instead of the PAGEMAP_SCAN ioctl; "
        "nothing shows",
    ),
    FaultCase(
        136, "FI_DUMP_CRASH", "dump", Effect.MIGRATES,
        _NO_EFFECT + "CRIU aborts only on a dump that fails anyway, and this one succeeds",
    ),
    FaultCase(
        136, "FI_DUMP_CRASH", "dump", Effect.DUMP_FAILS,
        "the dump fails as it always does on stream-echo, and CRIU, having let the tasks go, "
        "then aborts (SIGABRT): the workload goes on",
        scenario="stream-echo",
        signature="Can't dump half of stream unix connection", killed_by="SIGABRT",
        trace="fault: CRIU dump crashed!",
    ),
    FaultCase(
        137, "FI_COMPEL_INTERRUPT_ONLY_MODE", "dump", Effect.MIGRATES,
        "tasks are seized with PTRACE_INTERRUPT only; nothing shows",
    ),
    FaultCase(
        138, "FI_PLUGIN_CUDA_FORCE_ENABLE", "dump", Effect.MIGRATES,
        _NO_EFFECT + "it forces CRIU's CUDA plugin on, and dgram-echo loads no plugin "
        "(gpu-dgram-echo's tests use it)",
    ),
)


def codes() -> list[int]:
    return sorted({c.code for c in CASES})


def select(
    wanted: list[int] | None = None, cases: tuple[FaultCase, ...] = CASES
) -> list[FaultCase]:
    """The cases of the wanted codes (every case without), in table order; an unknown code
    is a usage error naming the known ones."""
    if not wanted:
        return list(cases)
    known = {c.code for c in cases}
    if unknown := sorted(set(wanted) - known):
        raise UsageError(
            f"unknown fault code(s) {', '.join(map(str, unknown))} "
            f"(known: {', '.join(map(str, sorted(known)))})"
        )
    return [c for c in cases if c.code in wanted]


def markdown() -> str:
    """The table for people (docs/faults.md holds it, kept true by a test)."""
    lines = [
        f"| code | CRIU's name | injected into | scenario | seen to do ({OBSERVED_WITH}) "
        "| the harness expects |",
        "| ---: | --- | --- | --- | --- | --- |",
    ]
    for c in CASES:
        cells = [str(c.code), f"`{c.name}`", c.inject, c.scenario, c.observed, c.expectation()]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    return "\n".join(lines) + "\n"


def scenario_path(case: FaultCase) -> Path:
    own = FAULT_SCENARIO_DIR / f"{case.scenario}.toml"
    return own if own.is_file() else scenarios.SCENARIO_DIR / f"{case.scenario}.toml"
