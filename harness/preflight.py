"""Preflight: can migrations run here, and which of CRIU's optional features work?

``criu check`` says whether the basics work; ``criu check --feature NAME`` probes one kernel
feature that some migrations need (the names are CRIU's, from criu/cr-check.c). Scenarios
name the features they need (``features = [...]``) and are skipped, with the reason, where
one is missing.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from harness import gpu, lazy
from harness.criu.backend import CriuBinary
from harness.errors import UsageError

__all__ = [
    "FEATURES",
    "Feature",
    "Preflight",
    "missing_features",
    "probe",
    "run",
    "skip_reason",
    "table",
]

# What each feature enables, for the features migrations here depend on.
FEATURES: dict[str, str] = {
    "mem_dirty_track": "pre-dump and --track-mem (iterative migration, soft-dirty memory tracking)",
    "uffd": "lazy pages (--lazy-pages: restore before all memory is copied)",
    "uffd-noncoop": "lazy pages for tasks that fork or remap memory while pages are served",
    "network_lock_nftables": "TCP network lock with nftables (--network-lock nftables)",
    "timens": "restoring clocks: CLOCK_MONOTONIC/BOOTTIME kept in a time namespace",
    "cuda": "GPU state: CRIU's CUDA plugin with NVIDIA's cuda-checkpoint, down to a trial",
    "lazy-pages": "--transport lazy: a trial post-copy migration across a veth pair",
}
# Features the harness checks itself, not `criu check`: each names its first missing piece.
class _Found(Protocol):
    @property
    def available(self) -> bool: ...
    @property
    def detail(self) -> str: ...


OWN_PROBES: dict[str, Callable[[str], _Found]] = {"cuda": gpu.check, "lazy-pages": lazy.check}
CHECK_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Feature:
    name: str
    available: bool
    enables: str
    detail: str = ""  # what CRIU said, when it is not simply "supported"


@dataclass
class Preflight:
    """Everything the check found; ``ok`` when root and ``criu check`` pass."""

    root: bool
    criu_path: str | None
    criu_version: str | None
    check_ok: bool
    check_output: str
    features: list[Feature] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.root and self.check_ok


def _last_line(text: str) -> str:
    """CRIU's own verdict: the last line it printed, without its log prefix."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1]
    # "Warn  (criu/cr-check.c:824): Dirty tracking is OFF..." -> the message.
    head, sep, rest = line.partition("): ")
    return rest if sep and head.split(" ", 1)[0] in ("Warn", "Error") else line


def parse_feature(name: str, returncode: int, output: str) -> Feature:
    """A Feature from ``criu check --feature NAME``'s exit status and output."""
    detail = _last_line(output)
    if detail == f"{name} is supported":
        detail = ""
    if returncode != 0 and not detail:
        detail = f"criu check --feature {name} exited with status {returncode}"
    return Feature(name, returncode == 0, FEATURES.get(name, ""), detail)


def _criu_run(binary: str, *args: str) -> tuple[int, str]:
    try:
        proc = subprocess.run(
            [binary, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return -1, str(exc)
    return proc.returncode, proc.stdout + proc.stderr


# Probes are cached for the life of the process: a kernel's features do not change under a run,
# and every scenario of a run asks again.
@functools.lru_cache(maxsize=None)
def probe(binary: str, name: str) -> Feature:
    """Whether the criu at binary supports feature name (``criu check --feature name``)."""
    if name in OWN_PROBES:
        found = OWN_PROBES[name](binary)
        return Feature(name, found.available, FEATURES[name], found.detail)
    rc, out = _criu_run(binary, "check", "--feature", name)
    return parse_feature(name, rc, out)


@functools.lru_cache(maxsize=None)
def _check(binary: str) -> tuple[bool, str]:
    rc, out = _criu_run(binary, "check")
    return rc == 0, _last_line(out) or f"exit status {rc}"


def missing_features(names: tuple[str, ...] | list[str], binary: str) -> list[Feature]:
    """The features among names that the criu at binary lacks here."""
    return [f for f in (probe(binary, n) for n in names) if not f.available]


def skip_reason(missing: list[Feature]) -> str:
    return "needs CRIU feature(s) missing here: " + "; ".join(
        f"{f.name}" + (f" ({f.detail})" if f.detail else "") for f in missing
    )


def run(binary: str | None = None, features: tuple[str, ...] = tuple(FEATURES)) -> Preflight:
    """Check root, find CRIU, run ``criu check`` and probe the features."""
    root = os.geteuid() == 0
    try:
        criu = CriuBinary.find(binary)
    except UsageError as exc:  # no criu: the table says so instead of stopping
        return Preflight(root, None, None, False, str(exc))
    ok, output = _check(criu.path)
    return Preflight(
        root=root,
        criu_path=criu.path,
        criu_version=criu.version(),
        check_ok=ok,
        check_output=output,
        features=[probe(criu.path, name) for name in features],
    )


def table(pre: Preflight) -> str:
    """The preflight as a table for a terminal."""
    yes = {True: "yes", False: "no"}
    rows: list[tuple[str, str, str]] = [
        ("root", yes[pre.root], "" if pre.root else "CRIU needs root (or CAP_CHECKPOINT_RESTORE)"),
        (
            "criu",
            f"{pre.criu_version}" if pre.criu_path else "no",
            pre.criu_path or pre.check_output,
        ),
        ("criu check", "yes" if pre.check_ok else "FAILED", pre.check_output if pre.criu_path else ""),
    ]
    for f in pre.features:
        rows.append((f.name, yes[f.available], f.enables + (f" -- {f.detail}" if f.detail else "")))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'check':<{width}}  {'ok':<6}  what for / what CRIU said"]
    lines += [f"{name:<{width}}  {state:<6}  {text}".rstrip() for name, state, text in rows]
    verdict = "ready: migrations can run here" if pre.ok else "NOT ready: root and criu check must pass"
    lines.append(verdict)
    return "\n".join(lines)
