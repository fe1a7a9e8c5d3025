"""The harness's one exception family: every error carries the context that explains it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class HarnessError(Exception):
    """Root of every error the harness raises on purpose."""


class UsageError(HarnessError):
    """Bad input from the user: a bad option, a malformed scenario, a missing binary."""


@dataclass
class CriuError(HarnessError):
    """A CRIU action failed.

    ``signature`` is the log line that explains the failure (not merely the first ``Error``
    line: CRIU logs harmless ones too); ``signal`` is set when CRIU itself was killed.
    """

    action: str
    pid: int | None
    log_path: Path | None
    signature: str | None
    returncode: int | None = None
    errno: int | None = None
    signal: int | None = None
    call: Any = field(default=None, repr=False, compare=False)  # the CriuCall that failed

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        what = f"criu {self.action}" + (f" of pid {self.pid}" if self.pid else "")
        if self.signal is not None:
            status = f"killed by signal {self.signal}"
        elif self.errno is not None:
            status = f"errno {self.errno}"
        else:
            status = f"exit status {self.returncode}"
        why = self.signature or "no error line in the log"
        return f"{what} failed ({status}): {why} [log: {self.log_path}]"


class WorkloadError(HarnessError):
    """A workload process did not start, did not become ready, or died."""


class VerificationError(HarnessError):
    """The workload did not behave as the scenario expects after a migration."""


class RemoteError(HarnessError):
    """The other host of a migration refused a request, failed it, or went away."""
