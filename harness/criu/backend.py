"""The interface both CRIU backends implement, and what they share."""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

from harness.criu.log import last_message, log_signature
from harness.criu.options import Action, CriuOptions
from harness.criu.process import DEFAULT_TIMEOUT_S
from harness.errors import CriuError, UsageError
from harness.fields import FieldError, Fields, JsonObject
from harness.rundir import private_dir

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

    def __init__(
        self, binary: str | None = None, timeout: float | None = None, fault: int | None = None
    ) -> None:
        self.criu = CriuBinary.find(binary)
        # Set from the command line, these override every action's own (the scenario's).
        self.timeout = check_timeout(timeout, "criu timeout")
        self.fault = check_fault(fault, "criu fault")

    @abstractmethod
    def _dump(self, pid: int, opts: CriuOptions, call: CriuCall) -> None: ...

    @abstractmethod
    def _restore(self, opts: CriuOptions, call: CriuCall) -> int: ...

    @abstractmethod
    def describe(self, action: Action, opts: CriuOptions, pid: int | None) -> JsonObject:
        """The exact options this backend passes to CRIU, for the artifacts."""

    def warm(self, action: Action, opts: CriuOptions, wait: bool = False) -> None:
        """Get ready for an action with these options that is about to come, so that less
        of it falls in the downtime (RpcBackend starts its CRIU ahead); by default nothing:
        a ``criu dump`` on the command line starts dumping as it starts."""

    def cool(self) -> None:
        """Let go of whatever warm() got ready and no action used."""

    def effective(self, opts: CriuOptions) -> CriuOptions:
        """The options an action runs with: this backend's timeout and fault, if set, over the
        action's own; the default timeout if neither says. The call records these."""
        timeout = self.timeout if self.timeout is not None else opts.timeout
        return replace(
            opts,
            timeout=timeout if timeout is not None else DEFAULT_TIMEOUT_S,
            fault=self.fault if self.fault is not None else opts.fault,
        )

    def dump(self, pid: int, opts: CriuOptions, calls: list[CriuCall] | None = None) -> CriuCall:
        """Checkpoint the tree rooted at pid into opts.images_dir. The call is added to calls
        as it starts: one that an interrupt ends is recorded too."""
        opts = self.effective(opts)
        call = self._start("dump", opts, pid, calls)
        with _timed(call):
            self._dump(pid, opts, call)
        return call

    def restore(self, opts: CriuOptions, calls: list[CriuCall] | None = None) -> CriuCall:
        """Restore the tree in opts.images_dir, detached; ``restored_pid`` names its root."""
        opts = self.effective(opts)
        call = self._start("restore", opts, None, calls)
        with _timed(call):
            call.restored_pid = self._restore(opts, call)
        return call

    def _start(
        self, action: Action, opts: CriuOptions, pid: int | None, calls: list[CriuCall] | None
    ) -> CriuCall:
        private_dir(opts.images_dir)  # CRIU's images hold the workload's memory
        call = CriuCall(
            action=action,
            backend=self.name,
            pid=pid,
            options=self.describe(action, opts, pid),
            criu_options=opts.to_json(),
            log_path=opts.log_path,
            started=time.time(),
        )
        if calls is not None:
            calls.append(call)
        return call

    @staticmethod
    def _failure(
        call: CriuCall,
        returncode: int | None = None,
        errno: int | None = None,
        timed_out: float | None = None,
    ) -> CriuError:
        sig = -returncode if returncode is not None and returncode < 0 else None
        signature = log_signature(call.log_path)
        if timed_out is not None:
            # Killed by the harness: what the log says last is wherever CRIU hung.
            sig, signature = signal.SIGKILL, f"timed out after {timed_out:g} s"
        elif sig is not None and signature is None:
            # Killed (by itself, a fault, the OOM killer) before it could log an error.
            last = last_message(call.log_path)
            signature = f"killed by {_signal_name(sig)}" + (f" after: {last}" if last else "")
        err = CriuError(
            action=call.action,
            pid=call.pid,
            log_path=call.log_path,
            signature=signature,
            returncode=returncode if sig is None else None,
            errno=errno,
            signal=sig,
        )
        call.error = str(err)
        err.call = call
        return err


@contextmanager
def _timed(call: CriuCall) -> Iterator[None]:
    """Time the call; one that an interrupt ends (CRIU let finish first) says so."""
    try:
        yield
    except KeyboardInterrupt as exc:
        call.error = call.error or f"interrupted ({type(exc).__name__})"
        raise
    finally:
        call.finished = time.time()


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def check_timeout(value: float | None, what: str) -> float | None:
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise UsageError(f"{what} must be a number of seconds greater than 0, not {value}")
    return value


def check_fault(value: int | None, what: str) -> int | None:
    # CRIU refuses codes out of its range itself (their range grows with its versions).
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise UsageError(f"{what} must be a CRIU fault code (a whole number from 1), not {value!r}")
    return value
