"""CRIU's statistics images, read from a real dump and restore."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import reaping
from harness.criu import CriuOptions, get_backend
from harness.stats import CriuStats, image_bytes, read_stats

pytestmark = pytest.mark.criu


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The images of a tiny process dumped and restored by real CRIU (the cli backend)."""
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
        if restored:
            reaping.reap([restored], timeout=10)  # a zombie of this process if it is the subreaper


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


def test_image_size_is_what_criu_wrote(images: Path) -> None:
    pages = sum(p.stat().st_size for p in images.glob("pages-*.img"))
    size = image_bytes(images)
    assert size > pages > 0
    logs = sum(p.stat().st_size for p in images.glob("*.log"))
    total = sum(p.stat().st_size for p in images.iterdir() if p.is_file())
    assert size <= total - logs
