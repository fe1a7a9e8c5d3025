"""The artifacts of a kept run: highlighted logs, the CRIU calls, versions, and the bundle."""

from __future__ import annotations

import json
import os
import socket
import tarfile
from pathlib import Path
from typing import Any

import pytest

from harness.artifacts import (
    CALLS,
    MARK,
    SIGNATURE_MARK,
    SIGNATURES,
    SUMMARY,
    VERSIONS,
    bundle,
    criu_calls,
    highlight,
    load_calls,
    write_artifacts,
)
from harness.environment import versions
from harness.errors import UsageError
from harness.fields import Fields
from harness.result import ScenarioResult

RLIMIT = "(00.000123) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted"
BAD_SIZE = "(00.030000)  4242: Error (criu/files-reg.c:2175): File tmp/x/app.log has bad size 114 (expect 90)"
FAILED = "(00.031000) Error (criu/cr-restore.c:2331): Restoring FAILED."
LOG = ["(00.000001) Version: 4.2.1", RLIMIT, "(00.02) Warn (criu/x.c:1): meh", BAD_SIZE, FAILED]


def test_highlight_marks_errors_and_flags_the_signature() -> None:
    lines, sig = highlight(LOG, "restore.log")
    assert sig == "Error (criu/files-reg.c:2175): File tmp/x/app.log has bad size 114 (expect 90)"
    body = lines[3:]
    assert body[0] == "    " + LOG[0]
    assert body[1] == "    " + RLIMIT  # harmless: not marked
    assert body[3] == MARK + BAD_SIZE + SIGNATURE_MARK
    assert body[4] == MARK + FAILED  # an error, but a consequence: marked, not the signature
    assert sum(SIGNATURE_MARK in line for line in lines) == 1
    assert lines[1] == f"# signature: {sig}"


def test_highlight_of_a_clean_log() -> None:
    lines, sig = highlight([RLIMIT, "(00.1) Restore finished successfully."])
    assert sig is None and not any(line.startswith(MARK) for line in lines)


def _run_dir(tmp_path: Path) -> tuple[Path, ScenarioResult]:
    run = tmp_path / "criu-harness-demo-abc"
    images = run / "images" / "reader"
    images.mkdir(parents=True)
    (images / "restore.log").write_text("\n".join(LOG) + "\n")
    (images / "dump.log").write_text(RLIMIT + "\n")
    restore = {
        "action": "restore",
        "backend": "cli",
        "pid": None,
        "restored_pid": None,
        "options": {"argv": ["/usr/sbin/criu", "restore", "--images-dir", str(images)]},
        "log": str(images / "restore.log"),
        "error": "criu restore failed (exit status 1): ... [log: x]",
    }
    dump = {**restore, "action": "dump", "log": str(images / "dump.log"), "error": None}
    result = {"name": "demo", "backend": "cli", "outcome": "failed",
              "cycles": [{"cycle": 1, "outcome": "failed", "calls": [dump, restore]}]}
    (run / "result.json").write_text(json.dumps(result))
    return run, ScenarioResult.from_json(Fields(result))


def test_criu_calls_name_role_images_and_signature(tmp_path: Path) -> None:
    run, result = _run_dir(tmp_path)
    dump, restore = criu_calls(run, result)
    assert (dump.cycle, dump.role, dump.images) == (1, "reader", "images/reader")
    assert dump.signature is None and "signature" not in dump.to_json()  # it did not fail
    assert restore.signature is not None
    assert restore.signature.endswith("has bad size 114 (expect 90)")
    assert restore.call.options["argv"][1] == "restore"  # the exact argv, untouched
    # Without criu-calls.json the calls are read back from result.json.
    assert load_calls(run) == [dump, restore]


def test_write_artifacts_without_images_or_backend(tmp_path: Path) -> None:
    run, result = _run_dir(tmp_path)
    assert write_artifacts(run, result) == []
    assert json.loads((run / CALLS).read_text())[1]["role"] == "reader"
    assert json.loads((run / SUMMARY).read_text())[0]["complete"] is False  # no inventory.img
    sigs = (run / SIGNATURES).read_text().splitlines()
    assert sigs[0].startswith("images/reader/dump.log") and sigs[0].endswith("-")
    assert sigs[1].startswith("images/reader/restore.log") and "has bad size" in sigs[1]
    highlighted = (run / "images" / "reader" / "restore.log.highlighted.txt").read_text()
    assert SIGNATURE_MARK in highlighted
    assert json.loads((run / VERSIONS).read_text())["kernel"]["release"] == os.uname().release


def test_versions_name_everything() -> None:
    v = versions("/usr/sbin/criu", "4.2.1")
    assert v["criu"] == {"path": "/usr/sbin/criu", "version": "4.2.1"}
    assert v["harness"] and v["python"]["version"]


def test_bundle_packs_relative_paths_and_skips_sockets(tmp_path: Path) -> None:
    run, _ = _run_dir(tmp_path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(run / "server.sock"))
    (run / "link").symlink_to("/etc/passwd")
    try:
        out = bundle(run)
    finally:
        sock.close()
    assert out == run.with_name(run.name + ".tar.gz")
    with tarfile.open(out) as tar:
        names = tar.getnames()
        assert all(not n.startswith("/") and n.split("/")[0] == run.name for n in names)
        assert f"{run.name}/images/reader/restore.log" in names
        assert f"{run.name}/server.sock" not in names and f"{run.name}/link" not in names
        assert all(m.isfile() or m.isdir() for m in tar.getmembers())
        assert {m.uid for m in tar.getmembers()} == {0}


def test_bundle_refuses_what_it_cannot_pack(tmp_path: Path) -> None:
    run, _ = _run_dir(tmp_path)
    with pytest.raises(UsageError, match="inside"):
        bundle(run, run / "self.tar.gz")
    with pytest.raises(UsageError, match="not a kept run directory"):
        bundle(tmp_path)
    with pytest.raises(UsageError, match="not a directory"):
        bundle(tmp_path / "missing")


def test_bundle_is_private_whatever_the_umask(tmp_path: Path) -> None:
    run, _ = _run_dir(tmp_path)
    old = os.umask(0o022)
    try:
        out = bundle(run)
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o600  # it holds the workloads' memory


def test_a_failed_bundle_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run, _ = _run_dir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    added: list[str] = []

    def add_then_fail(self: tarfile.TarFile, name: str, *args: Any, **kwargs: Any) -> None:
        added.append(name)
        if len(added) == 3:
            raise OSError(5, "Input/output error", name)

    monkeypatch.setattr(tarfile.TarFile, "add", add_then_fail)
    with pytest.raises(OSError):
        bundle(run, out / "x.tar.gz")
    assert len(added) == 3 and list(out.iterdir()) == []


def test_bundle_refuses_an_output_it_cannot_write(tmp_path: Path) -> None:
    run, _ = _run_dir(tmp_path)
    with pytest.raises(UsageError, match="no such directory"):
        bundle(run, tmp_path / "missing" / "x.tar.gz")
    with pytest.raises(UsageError, match="is a directory"):
        bundle(run, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [run.name]
