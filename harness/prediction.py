"""What ``inspect`` says of a tree: the dump options it assumes, each finding (a refusal CRIU
would make, a loss a restore would bring, or something no rule knows), the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from harness.criu.options import CriuOptions
from harness.fields import JsonObject

__all__ = ["DumpOptions", "Finding", "Prediction", "Severity", "Verdict"]

DEFAULT_GHOST_LIMIT = 1 << 20
# anon_inode files CRIU dumps (criu/files.c and friends).
KNOWN_ANON = ("[eventfd]", "[eventpoll]", "[signalfd]", "[timerfd]", "inotify", "[fanotify]",
              "[pidfd]")


class Severity(StrEnum):
    REFUSAL = "refusal"  # criu dump will fail
    WARNING = "warning"  # it dumps, and something does not come back (or comes back twice)
    UNKNOWN = "unknown"  # no rule knows what CRIU does with it


class Verdict(StrEnum):
    DUMPS = "dumps"
    REFUSED = "refused"
    NO_OPINION = "no opinion"


@dataclass(frozen=True)
class DumpOptions:
    """The dump options that change CRIU's verdict, and the CRIU version."""

    ext_unix_sk: bool = False
    tcp_established: bool = False
    shell_job: bool = False
    link_remap: bool = False
    network_lock: str | None = None  # None: CRIU's default, iptables
    criu_version: str | None = None

    @classmethod
    def of(cls, opts: CriuOptions, criu_version: str | None) -> DumpOptions:
        return cls(opts.ext_unix_sk, opts.tcp_established, opts.shell_job,
                   "--link-remap" in opts.extra_args, opts.network_lock, criu_version)

    def flags(self) -> list[str]:
        flags = [f"--{name.replace('_', '-')}" for name in
                 ("ext_unix_sk", "tcp_established", "shell_job", "link_remap") if getattr(self, name)]
        return flags + (["--network-lock", self.network_lock] if self.network_lock else [])


@dataclass(frozen=True)
class Finding:
    severity: Severity
    pid: int
    process: str
    fd: int | None
    what: str  # the object and why it matters
    signature: str | None = None  # the CRIU log line a refusal leads to (a part of it)
    helps: str | None = None  # the option (or change) that would help

    def line(self) -> str:
        where = f"pid {self.pid} ({self.process})" + (f" fd {self.fd}" if self.fd is not None else "")
        text = f"{self.severity}: {where}: {self.what}"
        if self.signature:
            text += f"; criu: {self.signature!r}"
        if self.helps:
            text += f"; helps: {self.helps}"
        return text

    def to_json(self) -> JsonObject:
        return {"severity": str(self.severity), "pid": self.pid, "process": self.process,
                "fd": self.fd, "what": self.what, "signature": self.signature, "helps": self.helps}


@dataclass
class Prediction:
    """What ``criu dump -t ROOT`` would do, with everything found on the way."""

    root: int
    process: str
    role: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        kinds = {f.severity for f in self.findings}
        if Severity.REFUSAL in kinds:
            return Verdict.REFUSED
        return Verdict.NO_OPINION if Severity.UNKNOWN in kinds else Verdict.DUMPS

    @property
    def refusal(self) -> Finding | None:
        return next((f for f in self.findings if f.severity is Severity.REFUSAL), None)

    def to_json(self) -> JsonObject:
        refusal = self.refusal
        return {"root": self.root, "process": self.process, "role": self.role,
                "verdict": str(self.verdict), "signature": refusal.signature if refusal else None,
                "findings": [f.to_json() for f in self.findings]}


