"""What integration tests look for after a run: its processes, by the paths they name.

Not a test module (pytest collects test_*.py only); the tests of this directory import it by
name, as pytest puts this directory on sys.path for them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import psutil

from harness.process import Workload
from harness.progress import EventProgress

# The conftest's dgram_pair fixture: a function of the run directory, giving a context manager.
Pair = tuple[dict[str, Workload], EventProgress]
PairFactory = Callable[[Path], AbstractContextManager[Pair]]


def of_run(base: Path) -> list[psutil.Process]:
    """Every live process whose command line or working directory is under base: what a run
    left behind."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd", "status"]):
        text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
        if str(base) in text and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found
