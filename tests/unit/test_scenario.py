"""Scenario files: every built-in one loads, and each kind of mistake gets one clear line."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from harness import cli, scenario
from harness.criu import plugins

GOOD = textwrap.dedent(
    """\
    name = "mine"
    description = "a user's own pair"

    [[process]]
    role = "server"
    argv = ["./server", "{run_dir}/s.sock"]
    ready = { socket = "{run_dir}/s.sock" }

    [[process]]
    role = "client"
    argv = ["./client", "{run_dir}/s.sock"]
    ready = { log = "{run_dir}/client.stdout", pattern = "reply" }

    [expect]
    outcome = "migrates"

    [verify]
    log = "{run_dir}/client.stdout"
    pattern = "reply \\\\d+"
    min_progress = 3
    """
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(scenario.ScenarioError) as info:
        scenario.load(write(tmp_path, text))
    return info.value.problems


def test_builtin_scenarios_load() -> None:
    names = {scenario.load(p).name for p in scenario.builtin_paths()}
    assert {"dgram-echo", "stream-echo"} <= names


def test_good_file_loads_and_renders(tmp_path: Path) -> None:
    s = scenario.load(write(tmp_path, GOOD))
    assert s.roles == ["server", "client"]
    assert s.verify.pattern == r"reply \d+" and s.verify.min_progress == 3
    assert s.render(s.processes[0].argv[1], Path("/r")) == "/r/s.sock"
    # Braces that are not placeholders (a regex quantifier) stay as they are.
    assert s.render("a{2}{name}", Path("/r")) == "a{2}mine"


def test_missing_field(tmp_path: Path) -> None:
    text = GOOD.replace('role = "client"\n', "")
    assert problems(tmp_path, text) == [f"{tmp_path}/mine.toml:9: process[1].role: missing (required)"]


def test_wrong_type(tmp_path: Path) -> None:
    text = GOOD.replace("min_progress = 3", 'min_progress = "3"')
    assert problems(tmp_path, text) == [
        f"{tmp_path}/mine.toml:20: verify.min_progress: must be an integer, not a string"
    ]


def test_unknown_key(tmp_path: Path) -> None:
    text = GOOD.replace('outcome = "migrates"', 'outcome = "migrates"\nsignatur = "x"')
    [line] = problems(tmp_path, text)
    assert line.startswith(f"{tmp_path}/mine.toml:16: expect.signatur: unknown key")


def test_bad_regex(tmp_path: Path) -> None:
    text = GOOD.replace('pattern = "reply \\\\d+"', 'pattern = "reply ("')
    [line] = problems(tmp_path, text)
    assert re.match(rf"{tmp_path}/mine.toml:19: verify.pattern: bad regular expression", line)


def test_toml_syntax_error(tmp_path: Path) -> None:
    text = GOOD.replace('outcome = "migrates"', 'outcome = "migrates')
    [line] = problems(tmp_path, text)
    assert line.startswith(f"{tmp_path}/mine.toml:15: toml: syntax error")


def test_every_problem_is_reported(tmp_path: Path) -> None:
    text = GOOD.replace("min_progress = 3", "min_progress = -1").replace(
        'outcome = "migrates"', 'outcome = "fails"'
    )
    found = problems(tmp_path, text)
    assert any("expect.action: missing" in p for p in found)
    assert any("expect.signature: missing" in p for p in found)
    assert any("verify.min_progress: must be greater than 0" in p for p in found)


@pytest.mark.parametrize(
    "change",
    [
        ('role = "client"\n', ""),
        ("min_progress = 3", 'min_progress = "3"'),
        ('outcome = "migrates"', 'outcome = "migrates"\nsignatur = "x"'),
        ('pattern = "reply \\\\d+"', 'pattern = "reply ("'),
        ('outcome = "migrates"', 'outcome = "migrates'),
    ],
)
def test_cli_reports_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: tuple[str, str]
) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    assert cli.main(["run", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert re.match(rf"criu-harness: {path}:\d+: \S+: ", err)


def test_unknown_option_and_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "--bogus"])
    assert info.value.code == 2
    assert cli.main(["run", "no-such-scenario"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--bogus" in err[0] and "no-such-scenario" in err[1]


def test_missing_binary_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "dgram-echo", "--criu-binary", "/nonexistent/criu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/nonexistent/criu" in err[0] and "Traceback" not in err[0]


def test_a_scenario_needing_a_plugin_passes_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin_home = tmp_path / "plugins"
    plugin_home.mkdir()
    monkeypatch.setenv(plugins.ENV, str(plugin_home))
    (plugin_home / "cuda_plugin.so").write_bytes(b"")
    text = GOOD + '\n[criu]\nplugins = ["cuda"]\n[criu.dump]\nplugins = []\n'
    s = scenario.load(write(tmp_path, text))
    assert s.criu.options("restore", tmp_path, "r.log").plugin_dir == plugin_home
    assert s.criu.options("dump", tmp_path, "d.log").plugin_dir is None  # per action, as others


def test_bad_plugin_names_are_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD + '\n[criu]\nplugins = ["CUDA plugin"]\n')
    assert found == [f"{tmp_path}/mine.toml:23: criu.plugins: bad plugin name 'CUDA plugin' "
                     "(cuda_plugin.so: cuda)"]
    found = problems(tmp_path, GOOD + '\n[criu]\nplugins = "cuda"\n')
    assert found == [f"{tmp_path}/mine.toml:23: criu.plugins: must be a list, not a string"]


@pytest.mark.parametrize("bad", ["../../x", "/tmp/y", "a/b", "", ".hidden", "x" * 65, "a\tb"])
def test_names_and_roles_are_identifiers(tmp_path: Path, bad: str) -> None:
    text = GOOD.replace('name = "mine"', f"name = {json.dumps(bad)}").replace(
        'role = "client"', f"role = {json.dumps(bad)}")
    with pytest.raises(scenario.ScenarioError) as info:
        scenario.load(write(tmp_path, text))
    problems = info.value.problems
    assert any(": name: " in p and "is not a name" in p for p in problems), problems
    assert any(".role: " in p and "is not a name" in p for p in problems), problems


def test_the_run_id_placeholder_is_unique_to_the_run(tmp_path: Path) -> None:
    s = scenario.load(write(tmp_path, GOOD))
    run = tmp_path / "criu-harness-demo-k2x_9abc"
    assert s.render("/tmp/echo-{run_id}.sock", run) == "/tmp/echo-k2x_9abc.sock"
