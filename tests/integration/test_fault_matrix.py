"""The fault matrix in the nightly job, a sample of it (one dump code, one restore code, both
backends; the whole matrix is `criu-harness matrix --faults`, about a minute here): each result
carries its fault and its expectation, the page shows the matrix, nothing is left behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from harness.criu import yard

pytestmark = pytest.mark.criu

HARNESS = [sys.executable, "-m", "harness"]


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    # Run directories go to $TMPDIR, short enough for the sockets in them (tests/conftest.py).
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=300,
                          check=False)


def test_a_sample_of_the_fault_matrix_in_the_nightly(
    tmp_path: Path, run_dirs_in_pytest_tmp: Path
) -> None:
    out = tmp_path / "nightly"
    proc = harness("matrix", "--only-faults", "--faults", "3", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fault matrix: 4 of 4 expectation(s) met" in proc.stdout
    [night] = [p for p in out.iterdir() if p.is_dir()]
    results = json.loads((night / "results.json").read_text())["scenarios"]
    seen = {(r["name"], r["backend"], r["fault"]["code"], r["outcome"]) for r in results}
    assert seen == {
        ("dgram-echo.fault-2", "rpc", 2, "xfailed"), ("dgram-echo.fault-2", "cli", 2, "xfailed"),
        ("dgram-echo.fault-3", "rpc", 3, "xfailed"), ("dgram-echo.fault-3", "cli", 3, "xfailed"),
    }
    for r in results:
        assert r["fault"]["expectation"].endswith("nothing left after the run")
        assert r["reason"].endswith(f"every expectation of fault {r['fault']['code']} met")
        if r["fault"]["code"] == 3:
            # Rolled back: the workload went on, and nothing was kept.
            assert r["criu_error"].endswith("fault: Dump VMA pages failure!")
            assert r["resumed_after_failure"] is True and r["artifacts"] == ""
            assert (r["messages_lost"], r["client_errors"]) == (0, 0)
        else:
            # The evidence of the failed restore, kept where it ran and bundled in the night.
            assert "killed by signal 9: Killed" in r["criu_error"]
            restore_log = Path(r["artifacts"]) / "images" / "server" / "restore.log"
            assert "fault: Restore root task failure!" in restore_log.read_text()
            assert Path(r["bundle"]).parent == night / "artifacts"
    page = (night / "report.html").read_text()
    assert "<h2>Fault matrix</h2>" in page and "4 of 4 expectation(s) met" in page
    assert "FI_RESTORE_ROOT_ONLY" in page and "FI_DUMP_PAGES" in page
    runs = run_dirs_in_pytest_tmp
    left = [p for p in psutil.process_iter(["cmdline"])
            if str(runs) in " ".join(p.info["cmdline"] or [])]
    assert left == [] and yard.yards(runs) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--faults", "7"], "unknown fault code(s) 7 (known: 1, 2, 3, 4, 5, 6, 127"),
        (["--faults", "3", "--criu-fault", "1"],
         "--criu-fault and the fault matrix (--faults) do not mix"),
    ],
)
def test_a_bad_fault_request_is_refused_before_anything_runs(
    tmp_path: Path, args: list[str], message: str
) -> None:
    proc = harness("matrix", "--out", str(tmp_path / "n"), *args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "n").exists()
