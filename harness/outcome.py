"""What a run can come to, and the words for its steps and policies: the one place that knows
which outcomes are as expected."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from harness.fields import FieldError, Fields

__all__ = ["Keep", "Outcome", "Step", "read_enum"]


class Outcome(StrEnum):
    """How a scenario (or one migration cycle) ended."""

    PASSED = "passed"
    XFAILED = "xfailed"  # CRIU failed as the scenario expects, and the workload lived on
    FAILED = "failed"
    XPASSED = "xpassed"  # expected to fail, but the migration succeeded
    ERROR = "error"  # the harness could not run it (a workload did not start, bad plan, ...)
    SKIPPED = "skipped"  # a CRIU feature it needs is missing here

    @property
    def as_expected(self) -> bool:
        """The one definition of "as expected": a run exits 0 only if every result is."""
        return self in (Outcome.PASSED, Outcome.XFAILED, Outcome.SKIPPED)


class Step(StrEnum):
    """A step of a migration, in the order a plan runs them."""

    FREEZE = "freeze"
    QUIESCE = "quiesce"
    INSPECT = "inspect"
    DUMP = "dump"
    REAP = "reap"
    RESTORE = "restore"
    RESUME = "resume"
    ROLLBACK = "rollback"


class Keep(StrEnum):
    """Which run directories are kept after the run."""

    ALWAYS = "always"
    FAILED = "failed"  # only those whose outcome is not as expected
    NEVER = "never"

    def keeps(self, outcome: Outcome) -> bool:
        return self is Keep.ALWAYS or (self is Keep.FAILED and not outcome.as_expected)


def read_enum(kind: type[Outcome] | type[Step], f: Fields, key: str, default: str | None = None) -> Any:
    text = f.text(key) if default is None else f.text(key, default)
    try:
        return kind(text)
    except ValueError:
        allowed = ", ".join(kind)
        raise FieldError(f._path(key), f"must be one of {allowed}, not {text!r}") from None
