"""Bad input through the command line, as a user meets it: one line on stderr naming what is
wrong, exit status 2, nothing started, nothing left behind, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

HARNESS = [sys.executable, "-m", "harness.cli"]
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def harness(*args: str, tmpdir: Path | None = None, timeout: float = 60,
            prefix: tuple[str, ...] = (), env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **(env or {})}
    if tmpdir is not None:
        environ["TMPDIR"] = str(tmpdir)  # where a run directory would appear
    return subprocess.run([*prefix, *HARNESS, *args], capture_output=True, text=True,
                          env=environ, timeout=timeout, check=False)


def refused(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    """The one line a usage error prints; it must name each of words."""
    assert proc.returncode == 2, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def kept_run(base: Path) -> Path:
    """A minimal kept run directory, as `bundle` and `restore` expect one."""
    run = base / "criu-harness-demo-x"
    (run / "images" / "server").mkdir(parents=True)
    (run / "result.json").write_text('{"name": "demo", "outcome": "failed"}')
    (run / "images" / "server" / "pages-1.img").write_bytes(b"secret memory")
    return run


# --- numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_threshold_must_be_finite(tmp_path: Path, value: str) -> None:
    old = tmp_path / "results.json"
    old.write_text('{"scenarios": []}')
    refused(harness("compare", str(old), str(old), f"--threshold={value}"), "--threshold", value)


@pytest.mark.parametrize("option, value", [
    ("--criu-timeout", "0"), ("--criu-timeout", "nan"), ("--criu-timeout", "inf"),
    ("--criu-fault", "0"), ("--criu-fault", "x"), ("--keep-max", "-1"),
])
def test_run_options_must_be_sane_numbers(tmp_path: Path, option: str, value: str) -> None:
    refused(harness("run", "dgram-echo", option, value, tmpdir=tmp_path), option)
    assert list(tmp_path.iterdir()) == []


def test_keep_max_from_the_environment_is_checked(tmp_path: Path) -> None:
    proc = harness("run", "dgram-echo", tmpdir=tmp_path, env={"CRIU_HARNESS_KEEP_MAX": "lots"})
    refused(proc, "CRIU_HARNESS_KEEP_MAX", "lots")
    assert list(tmp_path.iterdir()) == []


# --- output paths, checked before anything runs ------------------------------------------------


def test_bundle_into_a_missing_directory(tmp_path: Path) -> None:
    run = kept_run(tmp_path)
    refused(harness("bundle", str(run), "-o", "/nonexistent/dir/x.tar.gz"), "/nonexistent/dir")


def test_bundle_onto_an_existing_directory_leaves_nothing(tmp_path: Path) -> None:
    run = kept_run(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    refused(harness("bundle", str(run), "-o", str(out)), str(out), "directory")
    assert list(out.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [run.name, "out"]  # no .partial


def test_report_into_an_existing_file_is_refused_before_the_run(tmp_path: Path) -> None:
    report = tmp_path / "report"
    report.write_text("not a directory")
    runs = tmp_path / "runs"
    runs.mkdir()
    refused(harness("run", "dgram-echo", "--report", str(report), tmpdir=runs), "--report",
            str(report))
    assert list(runs.iterdir()) == []  # no run directory: nothing started


def test_matrix_out_onto_an_existing_file_is_refused(tmp_path: Path) -> None:
    refused(harness("matrix", "--out", "/etc/passwd", tmpdir=tmp_path), "--out", "/etc/passwd")
    assert list(tmp_path.iterdir()) == []


# --- scenario files ---------------------------------------------------------------------------


def test_extra_args_the_rpc_backend_cannot_pass_are_refused(tmp_path: Path) -> None:
    text = (SCENARIOS / "dgram-echo.toml").read_text()
    path = tmp_path / "short.toml"
    path.write_text(text.replace("[expect]\n", '[criu]\nextra_args = ["-v"]\n\n[expect]\n', 1))
    line = refused(harness("run", str(path), tmpdir=tmp_path), f"{path}:", "criu.extra_args", "-v")
    where = text.splitlines().index("[expect]") + 2  # [criu] is inserted there, then the key
    assert f":{where}:" in line  # the line of extra_args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.toml"]


def test_timeout_and_fault_in_a_scenario_are_checked(tmp_path: Path) -> None:
    text = (SCENARIOS / "dgram-echo.toml").read_text()
    path = tmp_path / "bad.toml"
    path.write_text(text.replace("[expect]\n", "[criu.dump]\ntimeout = 0\nfault = -3\n\n[expect]\n", 1))
    proc = harness("run", str(path), tmpdir=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "criu.dump.timeout: must be greater than 0" in proc.stderr
    assert "criu.dump.fault: must be greater than 0" in proc.stderr


# --- the criu binary --------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="run refuses a non-root user first")
def test_a_binary_that_is_not_criu_is_refused_before_anything_starts(tmp_path: Path) -> None:
    line = refused(harness("run", "dgram-echo", "--criu-binary", "/bin/false", tmpdir=tmp_path),
                   "/bin/false", "not CRIU", "Version: X.Y")
    assert "unknown" not in line
    assert list(tmp_path.iterdir()) == []  # no run directory, no workload


# --- unreadable files, as a user who may not read them -------------------------------------------


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory under /tmp that user nobody may enter (pytest's tmp_path is root's 0700)."""
    path = Path(tempfile.mkdtemp(prefix="criu-harness-perm-test-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run as another user")
def test_unreadable_files_are_named_not_a_traceback(shared_dir: Path) -> None:
    run = kept_run(shared_dir)
    for d in (run, run / "images", run / "images" / "server"):
        d.chmod(0o755)
    (run / "result.json").chmod(0o644)
    (run / "images" / "server" / "pages-1.img").chmod(0o000)
    out = shared_dir / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    results = shared_dir / "results.json"
    results.write_text('{"scenarios": []}')
    results.chmod(0o000)

    # bundle: a file it cannot read; nothing half-written is left in the output directory.
    refused(harness("bundle", str(run), "-o", str(out / "b.tar.gz"), prefix=NOBODY),
            "pages-1.img", "Permission denied")
    assert list(out.iterdir()) == []
    # bundle next to the run: a directory it may not write to, found before packing.
    refused(harness("bundle", str(run), prefix=NOBODY), str(shared_dir), "not writable")
    # compare: a results file it cannot read.
    refused(harness("compare", str(results), str(results), prefix=NOBODY),
            str(results), "Permission denied")
    # restore: images it cannot list.
    (run / "images").chmod(0o000)
    refused(harness("restore", str(run), prefix=NOBODY), "images", "Permission denied")
