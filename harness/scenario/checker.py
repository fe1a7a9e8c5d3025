"""The checking of a scenario file: every problem found, each pointed at its line."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.problems import Keys, Problem, Problems, type_name


class Lines:
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


class Checker(Problems):
    """Collects every problem of one file instead of stopping at the first."""

    def __init__(self, path: Path, text: str) -> None:
        super().__init__()
        self.path = path
        self.lines = Lines(text)

    @property
    def problems(self) -> list[str]:
        """Each problem as ``file:line: field: why``."""
        return [self._located(p) for p in self.found]

    def _located(self, problem: Problem) -> str:
        keys = tuple(str(k) for k in problem.keys)
        name = ".".join(f"[{k}]" if k.isdigit() else k for k in keys).replace(".[", "[")
        return f"{self.path}:{self.lines.line(keys)}: {name or 'file'}: {problem.why}"

    def table(
        self,
        data: Any,
        where: Keys,
        allowed: Mapping[str, type | tuple[type, ...]],
        required: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Check a table's keys and value types; return only the valid entries."""
        if not isinstance(data, dict):
            self.add(where, f"must be a table, not {type_name(data)}")
            return {}
        good: dict[str, Any] = {}
        for key, value in data.items():
            if key not in allowed:
                self.add((*where, key), f"unknown key (expected one of: {', '.join(allowed)})")
                continue
            want = allowed[key]
            if not _is(value, want):
                self.add((*where, key), f"must be {_type_label(want)}, not {type_name(value)}")
                continue
            good[key] = value
        for key in required:
            if key not in data:
                self.add((*where, key), "missing (required)")
        return good

    def strings(self, value: Any, where: Keys, nonempty: bool = True) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(where, "must be a list of strings")
            return []
        if nonempty and not value:
            self.add(where, "must not be empty")
        return value


def _is(value: Any, want: type | tuple[type, ...]) -> bool:
    kinds = want if isinstance(want, tuple) else (want,)
    if isinstance(value, bool):
        return bool in kinds
    if float in kinds and isinstance(value, int):
        return True
    return isinstance(value, kinds)


def _type_label(want: type | tuple[type, ...]) -> str:
    kinds = want if isinstance(want, tuple) else (want,)
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)
