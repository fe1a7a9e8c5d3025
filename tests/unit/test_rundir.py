"""Private directories and the pruning of kept run directories."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.rundir import PREFIX, RunDir, check_output_dir, check_output_file, private_dir


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_private_dir_makes_every_missing_parent_0700(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        deep = private_dir(tmp_path / "a" / "b" / "c")
    finally:
        os.umask(old)
    assert deep.is_dir()
    assert [mode(p) for p in (tmp_path / "a", tmp_path / "a" / "b", deep)] == [0o700] * 3
    (tmp_path / "open").mkdir(mode=0o755)
    private_dir(tmp_path / "open")  # already there: left as it is
    assert mode(tmp_path / "open") == 0o755


def test_a_run_directory_and_its_subdirectories_are_private(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    run = RunDir("demo")
    try:
        assert run.path.parent == tmp_path and run.path.name.startswith(f"{PREFIX}demo-")
        images = run.subdir("images", "cycle-1", "server")
        assert {mode(p) for p in (run.path, run.path / "images", images.parent, images)} == {0o700}
    finally:
        run.remove()


def test_output_checks(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(UsageError, match="--out .*file: exists and is not a directory"):
        check_output_dir(a_file, "--out")
    with pytest.raises(UsageError, match="is not a directory"):
        check_output_dir(a_file / "below", "--out")
    check_output_dir(tmp_path / "new" / "deeper", "--out")  # may be made
    check_output_dir(tmp_path, "--out")
    with pytest.raises(UsageError, match="is a directory"):
        check_output_file(tmp_path, "bundle")
    with pytest.raises(UsageError, match="no such directory"):
        check_output_file(tmp_path / "missing" / "x.tar.gz", "bundle")
    check_output_file(tmp_path / "x.tar.gz", "bundle")
