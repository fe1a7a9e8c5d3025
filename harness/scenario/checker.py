"""The checking of a scenario file: every problem found, each pointed at its line."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any


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


class Checker:
    """Collects every problem of one file instead of stopping at the first."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = Lines(text)
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
            self.problem(where, f"must be a table, not {type_name(data)}")
            return {}
        good: dict[str, Any] = {}
        for key, value in data.items():
            if key not in allowed:
                self.problem((*where, key), f"unknown key (expected one of: {', '.join(allowed)})")
                continue
            want = allowed[key]
            if not _is(value, want):
                self.problem((*where, key), f"must be {_type_label(want)}, not {type_name(value)}")
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


def type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _type_label(want: type | tuple[type, ...]) -> str:
    kinds = want if isinstance(want, tuple) else (want,)
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)
