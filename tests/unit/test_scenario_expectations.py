"""The scenario keys the atlas needs: mechanism, "breaks", per-version and alternative
expectations, max_duplicates; and built-ins found in scenarios/atlas/ too."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness import scenario

HEAD = textwrap.dedent(
    """\
    name = "mine"
    mechanism = "unix-carrier-pigeon"

    [[process]]
    role = "server"
    argv = ["./server"]

    [verify]
    events = "{run_dir}/client.events"
    """
)


def load(tmp_path: Path, expect: str) -> scenario.Scenario:
    path = tmp_path / "mine.toml"
    path.write_text(HEAD + textwrap.dedent(expect))
    return scenario.load(path)


def problems(tmp_path: Path, expect: str) -> list[str]:
    with pytest.raises(scenario.ScenarioError) as info:
        load(tmp_path, expect)
    return info.value.problems


def test_mechanism(tmp_path: Path) -> None:
    assert load(tmp_path, '[expect]\noutcome = "migrates"\n').mechanism == "unix-carrier-pigeon"


def test_breaks_needs_a_signature(tmp_path: Path) -> None:
    found = problems(tmp_path, '[expect]\noutcome = "breaks"\n')
    assert len(found) == 1 and "expect.signature: missing (required when outcome is 'breaks')" in found[0]
    s = load(tmp_path, '[expect]\noutcome = "breaks"\nsignature = "Broken pipe"\n')
    assert s.expect.outcome == "breaks" and s.expect.action is None


def test_an_unknown_outcome_names_all_three(tmp_path: Path) -> None:
    (found,) = problems(tmp_path, '[expect]\noutcome = "explodes"\n')
    assert "must be 'migrates', 'fails' or 'breaks', not 'explodes'" in found


def test_expectation_by_criu_version_then_plan(tmp_path: Path) -> None:
    s = load(tmp_path, """\
        [expect]
        outcome = "migrates"
        max_lost = 1

        [expect.plan.no-freeze]
        max_lost = 2

        [expect.criu."<4.2"]
        outcome = "fails"
        action = "dump"
        signature = "Can't get 1:16 opt"
        """)
    assert s.expectation("server-first", "4.2.1").outcome == "migrates"
    assert s.expectation("server-first").outcome == "migrates"
    old = s.expectation("server-first", "4.1.1")
    assert (old.outcome, old.action, old.max_lost) == ("fails", "dump", 1)
    # The version's keys go over the plan's expectation: what the plan says stays.
    assert s.expectation("no-freeze", "4.1.1").max_lost == 2
    assert s.expectation("no-freeze", "4.1.1").outcome == "fails"


def test_a_bad_version_spec_is_one_line(tmp_path: Path) -> None:
    (found,) = problems(tmp_path, '[expect]\noutcome = "migrates"\n[expect.criu."~4"]\nmax_lost = 1\n')
    assert "expect.criu.~4: not a version spec" in found


def test_a_version_override_that_fails_needs_its_signature(tmp_path: Path) -> None:
    found = problems(tmp_path, '[expect]\noutcome = "migrates"\n[expect.criu."4.1"]\noutcome = "fails"\n')
    assert any("expect.criu.4.1.action: missing" in p for p in found)


def test_alternative(tmp_path: Path) -> None:
    s = load(tmp_path, """\
        [expect]
        outcome = "fails"
        action = "restore"
        signature = "Bad file descriptor"

        [expect.or]
        outcome = "migrates"
        max_lost = 4
        """)
    assert s.alternative is not None
    assert (s.alternative.outcome, s.alternative.max_lost) == ("migrates", 4)


def test_an_alternative_must_be_the_other_way(tmp_path: Path) -> None:
    (found,) = problems(tmp_path, """\
        [expect]
        outcome = "migrates"

        [expect.or]
        max_lost = 4
        """)
    assert "expect.or.outcome: must differ from expect.outcome" in found


def test_max_duplicates(tmp_path: Path) -> None:
    s = load(tmp_path, '[expect]\noutcome = "migrates"\nmax_duplicates = 1\n')
    assert s.expect.max_duplicates == 1
    (found,) = problems(tmp_path, '[expect]\noutcome = "migrates"\nmax_duplicates = -1\n')
    assert "max_duplicates: must be at least 0" in found


def test_atlas_scenarios_are_built_in() -> None:
    paths = scenario.builtin_paths()
    assert any(p.parent.name == "atlas" for p in paths)
    found = scenario.find("unix-seqpacket")
    assert found.mechanism == "unix-seqpacket" and found.path.parent.name == "atlas"


def test_every_atlas_scenario_names_a_distinct_mechanism() -> None:
    loaded = [scenario.load(p) for p in scenario.builtin_paths()]
    mechanisms = [s.mechanism for s in loaded if s.mechanism]
    assert len(mechanisms) == len(set(mechanisms)) >= 12
    assert all(s.mechanism for s in loaded if s.path.parent.name == "atlas")
