"""Private directories and the pruning of kept run directories."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from harness.errors import UsageError
from harness.rundir import (
    MARKER,
    PREFIX,
    RunDir,
    check_output_dir,
    check_output_file,
    kept_runs,
    private_dir,
    prune,
)


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
        marker = json.loads((run.path / MARKER).read_text())
        assert marker["pid"] == os.getpid() and mode(run.path / MARKER) == 0o600
        assert [k.path for k in kept_runs(tmp_path)] == [run.path]
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


# --- pruning ----------------------------------------------------------------------------------


def fake_run(root: Path, name: str, created: float, pid: int | None = None,
             started: float = 0.0) -> Path:
    """A run directory as the harness leaves one; by default made by a process long gone."""
    path = root / f"{PREFIX}{name}"
    (path / "images").mkdir(parents=True)
    marker = {"harness": "criu-harness", "pid": pid or os.getpid(), "started": started,
              "created": created}
    (path / MARKER).write_text(json.dumps(marker))
    return path


def test_prune_keeps_the_newest_and_says_what_it_removed(tmp_path: Path) -> None:
    now = time.time()
    runs = [fake_run(tmp_path, f"demo-{i}", now - 100 + i) for i in range(5)]
    lines: list[str] = []
    removed = prune(2, lines.append, root=tmp_path)
    assert removed == runs[:3]
    assert [p.exists() for p in runs] == [False, False, False, True, True]
    assert len(lines) == 3 and all(line.startswith("pruned: ") for line in lines)
    assert str(runs[0]) in lines[0] and "--keep-max" in lines[0]
    assert prune(2, lines.append, root=tmp_path) == [] and len(lines) == 3


def test_prune_touches_only_the_harness_own_finished_directories(tmp_path: Path) -> None:
    old = time.time() - 1000
    # Not ours: no marker, another prefix, a link to a run directory, a marker that is a link.
    unmarked = tmp_path / f"{PREFIX}unmarked"
    unmarked.mkdir()
    other = fake_run(tmp_path, "x", old).rename(tmp_path / "something-else")
    target = fake_run(tmp_path / "elsewhere", "target", old)
    (tmp_path / f"{PREFIX}link").symlink_to(target)
    linked = tmp_path / f"{PREFIX}linked-marker"
    linked.mkdir()
    (linked / MARKER).symlink_to(target / MARKER)
    # A run of a harness that still runs, and one of this very process.
    live = subprocess.Popen(["sleep", "30"])
    try:
        running = fake_run(tmp_path, "running", old, pid=live.pid,
                           started=psutil.Process(live.pid).create_time())
        mine = fake_run(tmp_path, "mine", old, pid=os.getpid(),
                        started=psutil.Process().create_time())
        finished = fake_run(tmp_path, "finished", old + 1)
        lines: list[str] = []
        removed = prune(0, lines.append, root=tmp_path)
    finally:
        live.kill()
        live.wait()
    assert removed == [finished]
    for path in (unmarked, other, target, tmp_path / f"{PREFIX}link", linked, running, mine):
        assert path.exists() or path.is_symlink(), path
    assert len(lines) == 1
