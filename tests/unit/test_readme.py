"""The README's code is the code the tests run: if it drifts, the README lies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def test_the_python_examples_are_the_tested_ones_verbatim() -> None:
    examples = blocks("python")
    tested = (ROOT / "tests" / "plugin" / "test_readme_example.py").read_text()
    assert examples and all(example in tested for example in examples)


def test_the_scenario_example_is_valid_toml() -> None:
    [example] = blocks("toml")
    data = tomllib.loads(example)
    assert data["name"] == "native-dgram" and data["process"][0]["role"] == "server"


def test_the_quick_start_commands_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("run", "test"):
        assert re.search(rf"^{target}:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
