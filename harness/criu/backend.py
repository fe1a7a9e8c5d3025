"""The interface both CRIU backends implement, and what they share."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from harness.criu.log import log_signature
from harness.criu.options import Action, CriuOptions
from harness.errors import CriuError, UsageError
from harness.rundir import private_dir

# How long an interrupted harness lets a running CRIU finish: killing CRIU in the middle of a
# dump can leave the task with CRIU's parasite code in it, so it is the last resort.
INTERRUPT_GRACE_S = 30.0
# `criu --version` answers at once; a binary that does not is not CRIU.
VERSION_TIMEOUT_S = 10.0
# What `criu --version` prints first: "Version: 4.2.1".
_VERSION = re.compile(r"^Version:\s*(\d+\.\d+(?:\.\d+)*)\s*$", re.MULTILINE)


@dataclass
class CriuCall:
    """One CRIU action as it ran: what was asked, how long it took, where its log is."""

    action: Action
    backend: str
    pid: int | None
    options: dict[str, Any]  # as this backend passed them: argv, or RPC fields
    criu_options: dict[str, Any]  # the backend-neutral CriuOptions (see CriuOptions.to_json)
    log_path: Path
    started: float
    finished: float = 0.0
    restored_pid: int | None = None
    error: str | None = None

    @property
    def duration_s(self) -> float:
        return self.finished - self.started


@dataclass
class CriuBinary:
    """The criu executable a backend drives."""

    path: str
    _version: str | None = field(default=None, repr=False)

    @classmethod
    def find(cls, binary: str | None = None) -> CriuBinary:
        name = binary or os.environ.get("CRIU_BINARY") or "criu"
        found = shutil.which(name)
        if found is None:
            raise UsageError(
                f"criu binary not found: {name!r} (run scripts/install-criu, or pass --criu-binary)"
            )
        criu = cls(found)
        criu.check()
        return criu

    def check(self) -> str:
        """The version, or a usage error if this binary does not answer --version as CRIU does
        (``Version: X.Y``): a wrong --criu-binary is refused before any workload starts."""
        try:
            proc = subprocess.run(
                [self.path, "--version"], capture_output=True, text=True, check=False,
                stdin=subprocess.DEVNULL, timeout=VERSION_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise UsageError(
                f"criu binary {self.path}: not CRIU: '--version' did not answer within "
                f"{VERSION_TIMEOUT_S:g} s"
            ) from None
        except OSError as exc:
            raise UsageError(f"criu binary {self.path}: cannot run it: {exc.strerror}") from None
        m = _VERSION.search(proc.stdout)
        if m is None:
            said = (proc.stdout.strip() or proc.stderr.strip()).splitlines()[:1]
            raise UsageError(
                f"criu binary {self.path}: not CRIU: '--version' printed "
                f"{repr(said[0][:80]) if said else 'nothing'} (exit status {proc.returncode}), "
                "not 'Version: X.Y'"
            )
        self._version = m.group(1)
        return self._version

    def version(self) -> str:
        if self._version is None:
            out = subprocess.run(
                [self.path, "--version"], capture_output=True, text=True, check=False
            ).stdout
            m = re.search(r"Version:\s*(\S+)", out)
            self._version = m.group(1) if m else "unknown"
        return self._version


class Backend(ABC):
    """Runs CRIU actions. Both backends take the same options and raise the same errors."""

    name: ClassVar[str]

    def __init__(self, binary: str | None = None) -> None:
        self.criu = CriuBinary.find(binary)

    @abstractmethod
    def _dump(self, pid: int, opts: CriuOptions, call: CriuCall) -> None: ...

    @abstractmethod
    def _restore(self, opts: CriuOptions, call: CriuCall) -> int: ...

    @abstractmethod
    def describe(self, action: Action, opts: CriuOptions, pid: int | None) -> dict[str, Any]:
        """The exact options this backend passes to CRIU, for the artifacts."""

    def dump(self, pid: int, opts: CriuOptions) -> CriuCall:
        """Checkpoint the tree rooted at pid into opts.images_dir."""
        call = self._start("dump", opts, pid)
        try:
            self._dump(pid, opts, call)
        finally:
            call.finished = time.time()
        return call

    def restore(self, opts: CriuOptions) -> CriuCall:
        """Restore the tree in opts.images_dir, detached; ``restored_pid`` names its root."""
        call = self._start("restore", opts, None)
        try:
            call.restored_pid = self._restore(opts, call)
        finally:
            call.finished = time.time()
        return call

    def _start(self, action: Action, opts: CriuOptions, pid: int | None) -> CriuCall:
        private_dir(opts.images_dir)  # CRIU's images hold the workload's memory
        return CriuCall(
            action=action,
            backend=self.name,
            pid=pid,
            options=self.describe(action, opts, pid),
            criu_options=opts.to_json(),
            log_path=opts.log_path,
            started=time.time(),
        )

    @staticmethod
    def _failure(
        call: CriuCall,
        returncode: int | None = None,
        errno: int | None = None,
    ) -> CriuError:
        sig = -returncode if returncode is not None and returncode < 0 else None
        err = CriuError(
            action=call.action,
            pid=call.pid,
            log_path=call.log_path,
            signature=log_signature(call.log_path),
            returncode=returncode if sig is None else None,
            errno=errno,
            signal=sig,
        )
        call.error = str(err)
        err.call = call
        return err


def wait_criu(proc: subprocess.Popen[bytes]) -> int:
    """Wait for a CRIU process; if the harness is interrupted meanwhile, let CRIU finish
    (within a grace period) before passing the interrupt on, so no task is left half-dumped."""
    try:
        return proc.wait()
    except BaseException:
        try:
            proc.wait(timeout=INTERRUPT_GRACE_S)
        except BaseException:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        raise
