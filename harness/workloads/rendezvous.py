"""How a server tells its client where to find it, when there is no path to agree on in
advance (a port the kernel chose, a pipe's fds, an IPC id): a small file in the run directory."""

from __future__ import annotations

import os
import time
from pathlib import Path

WAIT_S = 5.0


def publish(path: str, text: str) -> None:
    """Write text so that a reader never sees a half-written file."""
    tmp = f"{path}.tmp"
    Path(tmp).write_text(text + "\n")
    os.replace(tmp, path)


def read_published(path: str, timeout: float = WAIT_S) -> str:
    """What the server published at path, waiting up to timeout for it to appear."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            text = Path(path).read_text().strip()
            if text:
                return text
        except FileNotFoundError:
            pass
        if time.monotonic() >= deadline:
            raise FileNotFoundError(f"{path}: nothing published within {timeout:g} s")
        time.sleep(0.02)
