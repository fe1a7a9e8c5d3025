"""Reading a JSON object field by field, for files the harness wrote and reads back.

A file that does not hold what its schema says (a hand edit, another tool, a torn copy) is
bad input: one error naming the field and what is wrong, never a KeyError or TypeError later.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import UsageError

__all__ = ["FieldError", "Fields", "JsonObject", "load_json"]

# A JSON object as json.loads gives it and json.dumps takes it: the edge of the typed model
# (each to_json writes one, each from_json reads one through Fields), and the shape of data
# the harness passes on untouched (a backend's own CRIU options, pycriu's decoded images).
JsonObject = dict[str, Any]

T = TypeVar("T")
_MISSING: Any = object()

_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
          list: "a list", dict: "an object", type(None): "null"}


def kind_of(value: object) -> str:
    return _NAMES.get(type(value), type(value).__name__)


class FieldError(UsageError):
    """A field of a JSON file has the wrong type or value; ``field`` is its dotted path."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field = field
        self.why = why


class Fields:
    """A JSON object whose fields are read with their type checked; ``where`` is its path in
    the file (``scenarios[0].cycles[1]``), so an error names the field exactly."""

    def __init__(self, data: object, where: str = "") -> None:
        if not isinstance(data, dict):
            raise FieldError(where or "file", f"must be an object, not {kind_of(data)}")
        self.data: JsonObject = data
        self.where = where

    def _path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def _get(self, key: str, kinds: tuple[type, ...], label: str, default: Any) -> Any:
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise FieldError(self._path(key), "missing")
            return default
        # JSON has no separate boolean kind in Python's eyes: True is an int, refuse it.
        if isinstance(value, bool) and bool not in kinds:
            raise FieldError(self._path(key), f"must be {label}, not {kind_of(value)}")
        if not isinstance(value, kinds):
            raise FieldError(self._path(key), f"must be {label}, not {kind_of(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise FieldError(self._path(key), f"must be a finite number, not {value}")
        return value

    def text(self, key: str, default: str | None = _MISSING) -> str:
        value: str = self._get(key, (str,), "a string", default)
        return value

    def optional_text(self, key: str) -> str | None:
        value: str | None = self._get(key, (str, type(None)), "a string or null", None)
        return value

    def integer(self, key: str, default: int = _MISSING) -> int:
        value: int = self._get(key, (int,), "an integer", default)
        return value

    def optional_integer(self, key: str) -> int | None:
        value: int | None = self._get(key, (int, type(None)), "an integer or null", None)
        return value

    def number(self, key: str, default: float = _MISSING) -> float:
        return float(self._get(key, (int, float), "a number", default))

    def optional_number(self, key: str) -> float | None:
        value = self._get(key, (int, float, type(None)), "a number or null", None)
        return None if value is None else float(value)

    def boolean(self, key: str, default: bool = _MISSING) -> bool:
        value: bool = self._get(key, (bool,), "a boolean", default)
        return value

    def optional_boolean(self, key: str) -> bool | None:
        value: bool | None = self._get(key, (bool, type(None)), "a boolean or null", None)
        return value

    def raw(self, key: str) -> JsonObject:
        """An object kept as it is (options a backend passed, an environment description)."""
        value: JsonObject = self._get(key, (dict,), "an object", {})
        return value

    def obj(self, key: str) -> Fields:
        return Fields(self._get(key, (dict,), "an object", {}), self._path(key))

    def optional_obj(self, key: str) -> Fields | None:
        value = self._get(key, (dict, type(None)), "an object or null", None)
        return None if value is None else Fields(value, self._path(key))

    def items(self, key: str, read: Callable[[Fields], T]) -> list[T]:
        """A list of objects, each read by ``read``."""
        values = self._get(key, (list,), "a list", [])
        return [read(Fields(v, f"{self._path(key)}[{i}]")) for i, v in enumerate(values)]

    def entries(self, key: str) -> Iterator[tuple[str, Fields]]:
        """An object of objects, by name."""
        for name, value in self._get(key, (dict,), "an object", {}).items():
            yield name, Fields(value, f"{self._path(key)}.{name}")

    def numbers(self, key: str) -> list[float]:
        return _numbers(self._get(key, (list,), "a list", []), self._path(key))

    def number_lists(self, key: str) -> list[list[float]]:
        path = self._path(key)
        out = []
        for i, v in enumerate(self._get(key, (list,), "a list", [])):
            if not isinstance(v, list):
                raise FieldError(f"{path}[{i}]", f"must be a list, not {kind_of(v)}")
            out.append(_numbers(v, f"{path}[{i}]"))
        return out

    def strings(self, key: str) -> list[str]:
        values = self._get(key, (list,), "a list", [])
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise FieldError(f"{self._path(key)}[{i}]", f"must be a string, not {kind_of(v)}")
        return list(values)

    def number_map(self, key: str) -> dict[str, float]:
        out = {}
        for name, value in self._get(key, (dict,), "an object", {}).items():
            out[name] = Fields({name: value}, self._path(key)).number(name)
        return out


def _numbers(values: list[Any], path: str) -> list[float]:
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise FieldError(f"{path}[{i}]", f"must be a finite number, not {kind_of(v)}")
    return [float(v) for v in values]


def load_json(file: Path, read: Callable[[Fields], T]) -> T:
    """A JSON file the harness wrote, read by ``read``; anything wrong with it (missing,
    unreadable, not JSON, a field of the wrong type) is one UsageError naming the file."""
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise UsageError(f"{file}: no such results file") from None
    except IsADirectoryError:
        raise UsageError(f"{file}: a directory, not a results file") from None
    except OSError as exc:
        raise UsageError(f"{file}: cannot read: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{file}: not a results file: bad JSON ({exc})") from None
    try:
        return read(Fields(data))
    except FieldError as exc:
        raise UsageError(f"{file}: {exc}") from None
