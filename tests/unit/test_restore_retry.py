"""Finding kept images and reading back the options a recorded CRIU call ran with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.artifacts import RecordedCall
from harness.criu.options import CriuOptions
from harness.errors import UsageError
from harness.fields import Fields
from harness.reproduce import (
    RestoreAttempt,
    _restore_order,
    _signature_of,
    find_images,
    options_from_call,
    run_dir_of,
)


def _images(path: Path, complete: bool = True) -> Path:
    path.mkdir(parents=True)
    (path / "pstree.img").write_bytes(b"")
    if complete:
        (path / "inventory.img").write_bytes(b"")
    return path


def test_find_images_single_migration(tmp_path: Path) -> None:
    server = _images(tmp_path / "images" / "server")
    _images(tmp_path / "images" / "client", complete=False)  # its dump failed
    assert find_images(tmp_path) == (None, {"server": server})
    with pytest.raises(UsageError, match="no cycle 2"):
        find_images(tmp_path, cycle=2)


def test_find_images_takes_the_last_cycle(tmp_path: Path) -> None:
    _images(tmp_path / "images" / "cycle-1" / "server")
    last = _images(tmp_path / "images" / "cycle-10" / "server")
    first = tmp_path / "images" / "cycle-1" / "server"
    assert find_images(tmp_path) == (10, {"server": last})
    assert find_images(tmp_path, cycle=1) == (1, {"server": first})


def test_run_dir_of_an_unpacked_bundle(tmp_path: Path) -> None:
    run = tmp_path / "criu-harness-x-1"
    (run / "images").mkdir(parents=True)
    assert run_dir_of(run) == run
    assert run_dir_of(tmp_path) == run  # the directory it was unpacked into
    with pytest.raises(UsageError, match="no images"):
        run_dir_of(run / "images")
    with pytest.raises(UsageError, match="unpack"):
        run_dir_of(tmp_path / "x.tar.gz")


def recorded(**fields: Any) -> RecordedCall:
    """A call as criu-calls.json lists it, with only the given fields besides the required."""
    data = {"cycle": 1, "role": "server", "images": "images/server", "action": "restore", **fields}
    return RecordedCall.from_json(Fields(data))


def test_options_from_the_recorded_call(tmp_path: Path) -> None:
    ran = CriuOptions(
        Path("/old/images/server"), log_file="restore.log", shell_job=True,
        tcp_established=True, network_lock="nftables", inherit_fds=(("file[1:2]", 7),),
        extra_args=("--ghost-limit", "1M"),
    )
    opts, notes = options_from_call(recorded(action="restore", criu_options=ran.to_json()).call,
                                    tmp_path, "retry.log")
    assert opts.images_dir == tmp_path and opts.log_file == "retry.log"  # the new place
    assert opts.shell_job and opts.tcp_established and opts.network_lock == "nftables"
    assert opts.extra_args == ("--ghost-limit", "1M") and opts.log_level == 4
    assert opts.inherit_fds == () and "inherit-fd file[1:2]" in notes[0]


def test_no_recorded_call_gives_defaults(tmp_path: Path) -> None:
    opts, notes = options_from_call(None, tmp_path, "retry.log")
    assert opts.log_level == 4 and opts.extra_args == () and notes == []


def test_restore_order_follows_the_run() -> None:
    calls = [
        recorded(cycle=1, role="server", action="dump"),
        recorded(cycle=1, role="client", action="dump"),
        recorded(cycle=1, role="client", action="restore"),
    ]
    roles = {"server": Path("s"), "client": Path("c"), "extra": Path("e")}
    assert _restore_order(calls, 1, roles) == ["client", "server", "extra"]


def test_recorded_signature_and_reproduced() -> None:
    sig = "Error (criu/files-reg.c:2175): File tmp/x has bad size 2 (expect 1)"
    error = f"criu restore failed (exit status 1): {sig} [log: /x/restore.log]"
    assert _signature_of(recorded(error=error)) == sig
    assert _signature_of(recorded(error=error, signature="given")) == "given"
    assert _signature_of(recorded(error=None)) is None
    attempt = RestoreAttempt(role="r", images_dir=Path("."), backend="cli", signature=sig,
                             recorded_signature=sig)
    assert attempt.reproduced is True
    attempt.signature = "Error (criu/cr-restore.c:1237): Can't fork for 42: File exists"
    assert attempt.reproduced is False
    assert RestoreAttempt(role="r", images_dir=Path("."), backend="cli", ok=True).reproduced is None
