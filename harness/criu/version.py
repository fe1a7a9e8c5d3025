"""CRIU versions compared, and the version specs scenario files use (``[expect.criu."<4.2"]``).

A spec is a version with an optional comparison: ``4.1`` matches every 4.1.x (a bare version
matches the versions it is a prefix of), ``<4.2``, ``<=4.1.1``, ``>=4.2`` and ``>4.1`` compare
component by component (4.1 == 4.1.0).
"""

from __future__ import annotations

import re

__all__ = ["VersionSpecError", "matches", "parse_version", "check_spec"]

_SPEC = re.compile(r"^\s*(<=|>=|<|>|==)?\s*(\d+(?:\.\d+)*)\s*$")


class VersionSpecError(ValueError):
    """A version spec that is not one."""


def parse_version(text: str) -> tuple[int, ...]:
    """(4, 1, 1) from "4.1.1"; trailing text ("4.2-rc1", "4.1.1 (gitid ...)") is ignored."""
    m = re.match(r"\s*(\d+(?:\.\d+)*)", text)
    if not m:
        raise VersionSpecError(f"not a version: {text!r}")
    return tuple(int(part) for part in m.group(1).split("."))


def check_spec(spec: str) -> tuple[str, tuple[int, ...]]:
    m = _SPEC.match(spec)
    if not m:
        raise VersionSpecError(
            f"not a version spec: {spec!r} (a version, or <, <=, >, >= and a version)"
        )
    return m.group(1) or "", parse_version(m.group(2))


def _padded(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    n = max(len(a), len(b))
    return a + (0,) * (n - len(a)), b + (0,) * (n - len(b))


def matches(spec: str, version: str) -> bool:
    """Whether the CRIU version (as ``criu --version`` says it) satisfies spec."""
    op, want = check_spec(spec)
    try:
        have = parse_version(version)
    except VersionSpecError:
        return False  # "unknown": no spec can speak for it
    if op == "":
        return have[: len(want)] == want
    a, b = _padded(have, want)
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b}[op]
