"""criu-harness: a test harness for CRIU live migration.

The core library (this package) knows nothing of pytest; the command line (``harness.cli``)
and the pytest plugin are thin fronts over it.
"""

from __future__ import annotations

# Imports nothing at start (the errors load on first use): the command line is interruptible
# from its first line only once this package has been imported (see harness.__main__).
# A local TYPE_CHECKING, which mypy honours by name, spares importing typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
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


def __getattr__(name: str) -> object:
    if name in __all__:
        from harness import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
