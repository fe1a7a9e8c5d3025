"""The README's Layout holds: modules under 300 lines and functions under 60, but for the
exceptions it names."""

from __future__ import annotations

import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "harness"
# The README's own exceptions (its "Layout" section says why).
LONG_MODULES = {"atlas.py"}


def modules() -> list[Path]:
    return sorted(p for p in HARNESS.rglob("*.py") if "scenarios" not in p.parts)


def test_modules_stay_short() -> None:
    long = {str(p.relative_to(HARNESS)): n for p in modules()
            if (n := len(p.read_text().splitlines())) > 300 and p.name not in LONG_MODULES}
    assert long == {}


def test_functions_stay_short() -> None:
    long = {f"{p.relative_to(HARNESS)}:{node.name}": length
            for p in modules() for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and (length := (node.end_lineno or node.lineno) - node.lineno + 1) > 60}
    assert long == {}
