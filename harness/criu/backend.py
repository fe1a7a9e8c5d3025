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
from typing import ClassVar

from harness.criu.log import log_signature
from harness.criu.options import Action, CriuOptions
from harness.errors import CriuError, UsageError
from harness.fields import FieldError, Fields, JsonObject

# How long an interrupted harness lets a running CRIU finish: killing CRIU in the middle of a
# dump can leave the task with CRIU's parasite code in it, so it is the last resort.
INTERRUPT_GRACE_S = 30.0


@dataclass
class CriuCall:
    """One CRIU action as it ran: what was asked, how long it took, where its log is."""

    action: Action
    backend: str
    pid: int | None
    options: JsonObject  # as this backend passed them: argv, or RPC fields
    criu_options: JsonObject  # the backend-neutral CriuOptions (see CriuOptions.to_json)
    log_path: Path
    started: float
    finished: float = 0.0
    restored_pid: int | None = None
    error: str | None = None

    @property
    def duration_s(self) -> float:
        return self.finished - self.started

    def to_json(self) -> JsonObject:
        return {
            "action": self.action,
            "backend": self.backend,
            "pid": self.pid,
            "restored_pid": self.restored_pid,
            "options": self.options,
            "criu_options": self.criu_options,
            "log": str(self.log_path),
            "started": self.started,
            "duration_ms": round(self.duration_s * 1e3, 3),
            "error": self.error,
        }

    @classmethod
    def from_json(cls, f: Fields) -> CriuCall:
        action = f.text("action")
        if action not in ("dump", "restore"):
            raise FieldError(f"{f.where}.action", f"must be dump or restore, not {action!r}")
        started = f.number("started", 0.0)
        return cls(
            action="dump" if action == "dump" else "restore",
            backend=f.text("backend", ""),
            pid=f.optional_integer("pid"),
            options=f.raw("options"),
            criu_options=f.raw("criu_options"),
            log_path=Path(f.text("log", "")),
            started=started,
            finished=started + f.number("duration_ms", 0.0) / 1e3,
            restored_pid=f.optional_integer("restored_pid"),
            error=f.optional_text("error"),
        )


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
        return cls(found)

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
    def describe(self, action: Action, opts: CriuOptions, pid: int | None) -> JsonObject:
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
        opts.images_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
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
