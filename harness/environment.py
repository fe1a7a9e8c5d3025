"""What a run ran on: CRIU, the kernel, the distribution, and the CRIU features that matter.

A nightly report must say what changed underneath it; the features come from preflight's
probes (``criu check --feature X``), so the report and ``criu-harness check`` agree.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Any

from harness import preflight
from harness.criu import CriuBinary

__all__ = ["describe"]


def _distribution() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "unknown"


def describe(criu: CriuBinary) -> dict[str, Any]:
    """The environment object of results.json."""
    return {
        "criu_version": criu.version(),
        "criu_binary": criu.path,
        "kernel": platform.release(),
        "machine": platform.machine(),
        "distribution": _distribution(),
        "python": sys.version.split()[0],
        "features": {name: preflight.probe(criu.path, name).available for name in preflight.FEATURES},
    }
