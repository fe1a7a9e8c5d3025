"""CRIU's statistics images, read from a real dump and restore; and the downtime summary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.criu import CriuOptions, get_backend
from harness.errors import HarnessError
from harness.result import CycleResult, DowntimeSummary, percentile
from harness.stats import CriuStats, image_bytes, read_stats


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The images of a tiny process dumped and restored by real CRIU (the cli backend); only
    the tests marked criu use it, so it is skipped where CRIU cannot run."""
    images = tmp_path_factory.mktemp("images")
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time\nwhile True: time.sleep(0.01)"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    backend = get_backend("cli")
    restored = None
    try:
        backend.dump(proc.pid, CriuOptions(images, "dump.log"))
        proc.wait(timeout=10)  # reaped, or the restore finds its pid taken
        restored = backend.restore(CriuOptions(images, "restore.log")).restored_pid
        yield images
    finally:
        for pid in (restored, proc.pid if proc.returncode is None else None):
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        proc.poll()


@pytest.mark.criu
def test_real_stats(images: Path) -> None:
    stats = read_stats(images)
    assert stats.pages_written and stats.pages_scanned
    assert stats.pages_scanned >= stats.pages_written > 0
    # Every page written at dump is restored.
    assert stats.pages_restored == stats.pages_written
    for ms in (stats.frozen_ms, stats.memdump_ms, stats.memwrite_ms, stats.restore_ms):
        assert ms is not None and 0 < ms < 10_000  # milliseconds, converted from CRIU's µs
    assert stats.freezing_ms is not None and stats.forking_ms is not None
    assert set(stats.to_json()) == set(CriuStats.__dataclass_fields__)


@pytest.mark.criu
def test_image_size_is_what_criu_wrote(images: Path) -> None:
    pages = sum(p.stat().st_size for p in images.glob("pages-*.img"))
    size = image_bytes(images)
    assert size > pages > 0
    logs = sum(p.stat().st_size for p in images.glob("*.log"))
    total = sum(p.stat().st_size for p in images.iterdir() if p.is_file())
    assert size <= total - logs


def test_no_stats_when_criu_wrote_none(tmp_path: Path) -> None:
    assert read_stats(tmp_path) == CriuStats()
    assert image_bytes(tmp_path / "missing") == 0


def test_a_torn_stats_image_is_a_harness_error(tmp_path: Path) -> None:
    (tmp_path / "stats-dump").write_bytes(b"\x00\x01")
    with pytest.raises(HarnessError, match="stats-dump"):
        read_stats(tmp_path)


def test_image_bytes_leaves_out_the_harness_files(tmp_path: Path) -> None:
    (tmp_path / "pages-1.img").write_bytes(b"x" * 4096)
    (tmp_path / "core-1.img").write_bytes(b"x" * 10)
    for name in ("dump.log", "dump.out", "restore.pid", "rpc-extra.conf"):
        (tmp_path / name).write_bytes(b"y" * 100)
    assert image_bytes(tmp_path) == 4106


def test_percentile_interpolates() -> None:
    assert percentile([1.0], 95) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([10.0, 20.0], 95) == pytest.approx(19.5)
    with pytest.raises(ValueError):
        percentile([], 50)


def test_downtime_summary() -> None:
    cycles = [CycleResult(n, "passed", downtime_ms=float(ms), messages_lost=lost, client_errors=err)
              for n, (ms, lost, err) in enumerate([(200, 0, 0), (100, 1, 0), (300, 0, 2)], 1)]
    cycles.append(CycleResult(4, "failed"))  # no downtime measured: left out
    s = DowntimeSummary.of(cycles)
    assert s is not None
    assert (s.min_ms, s.median_ms, s.max_ms) == (100.0, 200.0, 300.0)
    assert s.p95_ms == pytest.approx(290.0)
    assert (s.cycles, s.messages_lost, s.client_errors) == (4, 1, 2)
    assert DowntimeSummary.of([CycleResult(1, "failed")]) is None
