"""`criu-harness atlas` for real, on a sample of mechanisms and every CRIU installed here
(each one under /opt/criu by scripts/install-criu --version is a column)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.criu.binaries import check, installed

pytestmark = pytest.mark.criu


def test_atlas_sample(tmp_path: Path) -> None:
    out = tmp_path / "atlas"
    argv = [sys.executable, "-m", "harness.cli", "atlas", "--mechanisms", "unix-seqpacket",
            "inet-tcp", "--out", str(out), "--markdown", str(tmp_path / "atlas.md")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((out / "atlas.json").read_text())
    versions = {check(p).version: check(p) for p in installed()}
    cells = {(c["mechanism"], c["criu"]): c for c in data["cells"]}
    assert {v for _, v in cells} == set(versions)
    for version, build in versions.items():
        seq, tcp = cells[("unix-seqpacket", version)], cells[("inet-tcp", version)]
        assert seq["as_expected"] and tcp["as_expected"]
        if not build.usable:
            assert seq["kind"] == "criu unusable" and build.check_error in seq["signature"]
            continue
        assert seq["kind"] == "refused at dump"
        assert seq["judgement"] == "right" and tcp["judgement"] == "right"
        if version.startswith("4.1"):  # Linux 6.16 refuses SO_PASSCRED on inet sockets
            assert tcp["kind"] == "refused at dump" and "Can't get 1:16 opt" in tcp["signature"]
        elif version.startswith("4.2"):
            assert tcp["kind"] == "migrates" and tcp["lost"] == 0
    assert (out / "results.json").exists() and "<table class='atlas'>" in (out / "atlas.html").read_text()
    assert "| inet-tcp | server-first |" in (tmp_path / "atlas.md").read_text()
