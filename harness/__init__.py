"""criu-harness: a test harness for CRIU live migration.

The core library (this package) knows nothing of pytest; the command line (``harness.cli``)
and the pytest plugin are thin fronts over it.
"""

from __future__ import annotations

from harness.errors import (
    CriuError,
    HarnessError,
    UsageError,
    VerificationError,
    WorkloadError,
)

__version__ = "0.1.0"

__all__ = [
    "CriuError",
    "HarnessError",
    "UsageError",
    "VerificationError",
    "WorkloadError",
    "__version__",
]
