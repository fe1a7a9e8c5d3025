"""The CRIU binaries a matrix runs against: the default one and those installed side by side
(``scripts/install-criu --version``: /opt/criu/<version>/sbin/criu), each with its version and
whether ``criu check`` passes on this kernel. A CRIU that fails it is a result of its own."""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.criu.backend import CriuBinary
from harness.errors import UsageError

__all__ = ["SIDE_BY_SIDE", "CriuBuild", "check", "installed"]

SIDE_BY_SIDE = Path("/opt/criu")
CHECK_TIMEOUT_S = 60.0
# "Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds", without the lines that
# explain nothing: a helper's exit status, the rlimit CRIU cannot raise here.
_ERROR = re.compile(r"^(?:\(\s*[\d.]+\)\s+)?Error \([^)]*\):\s*(?P<msg>.*)$")
_NOISE = re.compile(r"exited, status=|RLIMIT_NOFILE")


@dataclass(frozen=True)
class CriuBuild:
    """One CRIU binary: where, which version, and whether it works on this kernel."""

    path: str
    version: str
    usable: bool
    check_error: str | None  # the first line of `criu check` that explains its failure

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def first_error(output: str) -> str | None:
    for line in output.splitlines():
        if (m := _ERROR.match(line.strip())) and not _NOISE.search(line):
            return m.group("msg")
    return None


@functools.lru_cache(maxsize=None)
def check(path: str) -> CriuBuild:
    """Run ``criu check`` once per binary and process."""
    binary = CriuBinary.find(path)
    try:
        proc = subprocess.run([binary.path, "check"], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=CHECK_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CriuBuild(binary.path, binary.version(), False, str(exc))
    output = proc.stdout + proc.stderr
    usable = proc.returncode == 0
    error = None if usable else (first_error(output) or f"criu check exited with {proc.returncode}")
    return CriuBuild(binary.path, binary.version(), usable, error)


def installed(root: Path = SIDE_BY_SIDE, default: str | None = None) -> list[str]:
    """The default criu and each one under root, one binary per version (the default first
    among equals), newest version first."""
    paths: list[str] = []
    try:
        paths.append(CriuBinary.find(default).path)
    except UsageError:
        pass
    if root.is_dir():
        paths += [str(p) for p in sorted(root.glob("*/sbin/criu")) if os.access(p, os.X_OK)]
    seen: set[str] = set()
    chosen = []
    for path in paths:
        version = CriuBinary(path).version()
        if version not in seen:
            seen.add(version)
            chosen.append(path)
    return sorted(chosen, key=lambda p: _version_key(CriuBinary(p).version()), reverse=True)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version)[:3])
