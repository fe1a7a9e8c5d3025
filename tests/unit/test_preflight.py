"""Reading ``criu check --feature`` answers, and the preflight table."""

from __future__ import annotations

from harness.preflight import (
    FEATURES,
    Feature,
    Preflight,
    parse_feature,
    skip_reason,
    table,
)


def test_a_supported_feature() -> None:
    f = parse_feature("uffd", 0, "uffd is supported\n")
    assert f == Feature("uffd", True, FEATURES["uffd"], "")


def test_a_missing_feature_keeps_what_criu_said() -> None:
    out = "Warn  (criu/cr-check.c:824): Dirty tracking is OFF. Memory snapshot will not work.\n"
    f = parse_feature("mem_dirty_track", 1, out)
    assert not f.available
    assert f.detail == "Dirty tracking is OFF. Memory snapshot will not work."
    assert "pre-dump" in f.enables


def test_an_unknown_feature() -> None:
    f = parse_feature("no_such", 1, "Error (criu/cr-check.c:1901): Unknown feature no_such\n")
    assert not f.available and f.detail == "Unknown feature no_such" and f.enables == ""
    assert parse_feature("x", 1, "").detail == "criu check --feature x exited with status 1"


def test_skip_reason_names_each_missing_feature() -> None:
    missing = [Feature("mem_dirty_track", False, "", "Dirty tracking is OFF."), Feature("x", False, "")]
    assert skip_reason(missing) == (
        "needs CRIU feature(s) missing here: mem_dirty_track (Dirty tracking is OFF.); x"
    )


def test_table_and_verdict() -> None:
    pre = Preflight(True, "/usr/sbin/criu", "4.2.1", True, "Looks good.",
                    [Feature("uffd", True, FEATURES["uffd"]), Feature("timens", False, "clocks", "no")])
    text = table(pre)
    assert pre.ok and text.splitlines()[-1].startswith("ready")
    assert any(line.split()[:2] == ["uffd", "yes"] for line in text.splitlines())
    assert any(line.split()[:2] == ["timens", "no"] and line.endswith("clocks -- no")
               for line in text.splitlines())
    not_root = Preflight(False, "/usr/sbin/criu", "4.2.1", True, "Looks good.")
    assert not not_root.ok and "NOT ready" in table(not_root)
    no_criu = Preflight(True, None, None, False, "criu binary not found: 'criu'")
    assert "criu binary not found" in table(no_criu)
