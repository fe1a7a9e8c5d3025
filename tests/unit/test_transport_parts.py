"""Transports without CRIU: names, where the destination's images go, what is shipped there,
and fs.pipe-max-size raised by the first holder and put back by the last."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.netns import Host
from harness.sysctl import raised_pipe_max_size
from harness.transport import PageServer, check_transport, ship


def test_names() -> None:
    assert check_transport("lazy") == "lazy"
    with pytest.raises(UsageError, match="unknown transport 'scp': choose one of local, "):
        check_transport("scp")


def test_the_destination_mirrors_the_images_under_dst(tmp_path: Path) -> None:
    here = Host("source", "127.0.0.1")
    ps = PageServer("criu", here, here, tmp_path)
    try:
        assert ps.destination(tmp_path / "images" / "cycle-2" / "server") == (
            tmp_path / "dst" / "images" / "cycle-2" / "server")
    finally:
        ps.close()


def test_ship_copies_images_not_logs_nor_what_is_there(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    for name in ("core-1.img", "pstree.img", "stats-dump", "dump.log", "dump.out",
                 "restore.pid", "rpc-extra.conf", "pages-1.img"):
        (src / name).write_text(name)
    (dst / "pages-1.img").write_text("from the page server")
    ship(src, dst)
    assert sorted(p.name for p in dst.iterdir()) == [
        "core-1.img", "pages-1.img", "pstree.img", "stats-dump"]
    assert (dst / "pages-1.img").read_text() == "from the page server"


def test_pipe_max_size_raised_by_the_first_and_put_back_by_the_last(tmp_path: Path) -> None:
    sysctl, state = tmp_path / "pipe-max-size", tmp_path / "state" / "pipe.json"
    sysctl.write_text("1048576\n")
    said: list[str] = []
    with raised_pipe_max_size(8 << 20, said.append, sysctl, state) as value:
        assert value == 8 << 20 and sysctl.read_text() == str(8 << 20)
        with raised_pipe_max_size(8 << 20, said.append, sysctl, state):
            pass
        assert sysctl.read_text() == str(8 << 20)  # the first holder still runs
    assert sysctl.read_text() == "1048576" and not state.exists()
    assert said[0].startswith("fs.pipe-max-size raised from 1048576 to 8388608")
    assert said[-1] == "fs.pipe-max-size put back to 1048576" and len(said) == 2


def test_pipe_max_size_high_enough_is_left_alone(tmp_path: Path) -> None:
    sysctl, state = tmp_path / "pipe-max-size", tmp_path / "pipe.json"
    sysctl.write_text("16777216\n")
    said: list[str] = []
    with raised_pipe_max_size(8 << 20, said.append, sysctl, state) as value:
        assert value == 16 << 20
    assert sysctl.read_text() == "16777216\n" and said == []


def test_a_holder_that_died_does_not_keep_it_raised(tmp_path: Path) -> None:
    sysctl, state = tmp_path / "pipe-max-size", tmp_path / "pipe.json"
    sysctl.write_text("1048576")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    state.write_text(f'{{"holders": ["{dead}:x"], "original": 1048576, "set": 8388608}}')
    sysctl.write_text("8388608")  # left raised by a harness killed outright
    with raised_pipe_max_size(8 << 20, lambda _: None, sysctl, state):
        pass
    # The dead holder does not count; the next run puts back what it left raised.
    assert sysctl.read_text() == "1048576" and not state.exists()
    assert os.getpid() != int(dead)
