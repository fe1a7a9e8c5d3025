"""CRIU's statistics images where CRIU wrote none or a torn one, the image size, and the
downtime summary (a real dump's statistics: tests/integration/test_criu_stats.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.result import CycleResult, DowntimeSummary, percentile
from harness.stats import CriuStats, image_bytes, read_stats


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
