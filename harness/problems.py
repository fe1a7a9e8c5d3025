"""Problems found in a mapping of keys: all of them, each with where it is and why.

The functions that build the harness's types from such a mapping (a scenario file's table, the
``migration`` fixture's keyword arguments) report here instead of raising at the first problem,
and each front says where in its own terms: a scenario file as ``file:line: field``, the
fixture by the name of its argument.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Keys = tuple[str | int, ...]
# What a scenario or role may be called: it names files and directories the harness makes.
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# The longest wait a scenario may ask for (a deadline, a timeout, a delay): an hour is more than
# any migration takes, and a typo like 1e9 must not hang a run for thirty years.
MAX_SECONDS = 3600.0
# How a front names a key (the keys down to it) inside a message: a scenario file by the key
# itself ("required with log"), the fixture by its argument ("required with ready_log").
Naming = Callable[[Keys], str]


def last_key(keys: Keys) -> str:
    return str(keys[-1]) if keys else ""


@dataclass(frozen=True)
class Problem:
    keys: Keys  # from the root of the mapping; () for the mapping itself
    why: str


class Problems:
    """Where a builder's problems go; :meth:`at` gives a view one table further down."""

    def __init__(self, naming: Naming = last_key) -> None:
        self.found: list[Problem] = []
        self.naming = naming
        self.prefix: Keys = ()

    def at(self, *keys: str | int) -> Problems:
        """The same problems, seen from the table at keys (below this one)."""
        view = Problems(self.naming)
        view.found = self.found
        view.prefix = (*self.prefix, *keys)
        return view

    def __len__(self) -> int:
        return len(self.found)

    def add(self, keys: Keys, why: str) -> None:
        self.found.append(Problem((*self.prefix, *keys), why))

    def name(self, key: str) -> str:
        """What a message calls key (of this table)."""
        return self.naming((*self.prefix, key))

    def regex(self, pattern: str, key: str) -> None:
        try:
            re.compile(pattern)
        except re.error as exc:
            self.add((key,), f"bad regular expression: {exc}")

    def identifier(self, value: str, key: str) -> None:
        """A name that becomes part of paths (run directories, images, output files, cgroups)
        as root: never a path itself, never empty, never long."""
        if not IDENTIFIER.fullmatch(value):
            shown = value if len(value) <= 40 else value[:37] + "..."
            self.add((key,), f"{shown!r} is not a name: letters, digits, '.', '_' and '-', "
                             "starting with a letter or digit, at most 64")

    def positive(
        self, value: float, key: str, zero_ok: bool = False, most: float | None = None
    ) -> None:
        """A number in range: inf or NaN would hang a run or switch a check off silently."""
        least = "at least 0" if zero_ok else "greater than 0"
        if not math.isfinite(value):
            self.add((key,), f"must be a finite number {least}, not {value}")
        elif value < 0 or (value == 0 and not zero_ok):
            self.add((key,), f"must be {least}, not {value}")
        elif most is not None and value > most:
            self.add((key,), f"must be at most {most:g}, not {value:g}")


def type_name(value: Any) -> str:
    """A value's type as a message says it: "a string", "a table"."""
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)
