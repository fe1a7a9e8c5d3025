"""CRIU version specs, as scenario files use them in [expect.criu."SPEC"]."""

from __future__ import annotations

import pytest

from harness.criu.version import VersionSpecError, check_spec, matches, parse_version


@pytest.mark.parametrize(
    ("spec", "version", "expected"),
    [
        ("4.1", "4.1.1", True),
        ("4.1", "4.10", False),
        ("4.1", "4.2.1", False),
        ("<4.2", "4.1.1", True),
        ("<4.2", "4.2", False),
        ("<4.2", "4.2.1", False),
        ("<=4.1.1", "4.1.1", True),
        (">=4.2", "4.2.1", True),
        (">4.1", "4.1.0", False),
        ("==4.1", "4.1.0", True),
        ("3", "3.17.1", True),
        ("<4.2", "unknown", False),
        ("4.2", "4.2.1 (gitid v4.2.1)", True),
    ],
)
def test_matches(spec: str, version: str, expected: bool) -> None:
    assert matches(spec, version) is expected


@pytest.mark.parametrize("spec", ["", "four", "<", "~4.1", "4.1-rc1", "4..1"])
def test_a_bad_spec_is_refused(spec: str) -> None:
    with pytest.raises(VersionSpecError):
        check_spec(spec)


def test_parse_version() -> None:
    assert parse_version("4.1.1") == (4, 1, 1)
    assert parse_version(" 3.17") == (3, 17)
