"""What a kept run directory holds beyond the raw files, so a failure can be read and replayed
elsewhere: CRIU logs with their error lines marked, the exact CRIU calls, a decoded summary of
the images and the versions of everything involved; and the bundle that packs it all.

A kept run directory looks like this::

    result.json             the scenario's result (cycles, calls, signature)
    criu-calls.json         every CRIU action: role, cycle, images dir, argv or RPC fields
    signatures.txt          each CRIU log and the error line that explains it
    images-summary.json     per images dir: process tree, fds, memory maps
    versions.json           CRIU, kernel, harness, Python, pycriu
    <role>.stdout/.stderr   the workloads' own output
    images/[cycle-N/]<role>/  CRIU's images, dump.log, restore.log, <log>.highlighted.txt
"""

from __future__ import annotations

import json
import os
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.criu import Backend, CriuCall
from harness.criu.log import HARMLESS, error_lines, log_signature, signature
from harness.environment import versions
from harness.errors import UsageError
from harness.fields import FieldError, Fields, JsonObject
from harness.images import image_sets, summarize
from harness.result import ScenarioResult
from harness.rundir import check_output_file

__all__ = [
    "CALLS",
    "MARK",
    "RecordedCall",
    "SIGNATURES",
    "SUMMARY",
    "VERSIONS",
    "bundle",
    "criu_calls",
    "highlight",
    "highlight_logs",
    "load_calls",
    "versions",
    "write_artifacts",
]

CALLS = "criu-calls.json"
SIGNATURES = "signatures.txt"
SUMMARY = "images-summary.json"
VERSIONS = "versions.json"
PROBLEMS = "artifacts-problems.txt"
HIGHLIGHTED = ".highlighted.txt"
MARK = ">>> "
SIGNATURE_MARK = "   <== signature"


# --- logs -------------------------------------------------------------------------------------


def highlight(lines: Iterable[str], name: str = "log") -> tuple[list[str], str | None]:
    """A CRIU log with every error that matters marked ``>>> `` and the signature (the line
    that explains the failure) flagged at its end; returns the lines and the signature."""
    raw = [line.rstrip("\n") for line in lines]
    sig = signature(raw)
    out = [
        f"# CRIU log {name}: every error line but the harmless ones is marked '{MARK.strip()}'",
        f"# signature: {sig or '- (no error)'}",
        "",
    ]
    flagged = False
    for line in raw:
        errors = error_lines([line])
        if errors and not any(p.search(errors[0]) for p in HARMLESS):
            if not flagged and errors[0] == sig:
                out.append(f"{MARK}{line}{SIGNATURE_MARK}")
                flagged = True
            else:
                out.append(f"{MARK}{line}")
        else:
            out.append(f"    {line}")
    return out, sig


def highlight_logs(run_dir: Path) -> dict[str, str | None]:
    """Write ``<log>.highlighted.txt`` next to every CRIU log under images/ and return each
    log's signature, by path relative to run_dir."""
    found: dict[str, str | None] = {}
    for log in sorted((run_dir / "images").rglob("*.log")) if (run_dir / "images").is_dir() else []:
        if not log.is_file():
            continue
        with log.open(errors="replace") as f:
            lines, sig = highlight(f, log.name)
        log.with_name(log.name + HIGHLIGHTED).write_text("\n".join(lines) + "\n")
        found[str(log.relative_to(run_dir))] = sig
    return found


def _signatures_text(found: dict[str, str | None]) -> str:
    width = max([len(k) for k in found] or [0])
    return "".join(f"{path:<{width}}  {sig or '-'}\n" for path, sig in found.items())


# --- CRIU calls -------------------------------------------------------------------------------


@dataclass
class RecordedCall:
    """One CRIU action of a kept run, as criu-calls.json lists it: with its cycle, its role,
    its images directory relative to the run directory (so a copy of the directory can be
    restored from elsewhere) and, if it failed, the line that explains it."""

    cycle: int
    role: str
    images: str
    call: CriuCall
    signature: str | None = None

    def to_json(self) -> JsonObject:
        data = {"cycle": self.cycle, "role": self.role, "images": self.images, **self.call.to_json()}
        if self.signature is not None:
            data["signature"] = self.signature
        return data

    @classmethod
    def from_json(cls, f: Fields) -> RecordedCall:
        return cls(f.integer("cycle"), f.text("role"), f.text("images"), CriuCall.from_json(f),
                   f.optional_text("signature"))


def criu_calls(run_dir: Path, result: ScenarioResult) -> list[RecordedCall]:
    """Every CRIU action of a result, located relative to run_dir."""
    calls = []
    for cycle in result.cycles:
        for call in cycle.calls:
            images = call.log_path.parent
            try:
                rel = str(images.relative_to(run_dir))
            except ValueError:
                rel = str(images)
            # The line that explains a failure, for comparing with a retried restore.
            sig = log_signature(run_dir / rel / call.log_path.name) if call.error else None
            calls.append(RecordedCall(cycle.cycle, images.name, rel, call, sig))
    return calls


def load_calls(run_dir: Path) -> list[RecordedCall]:
    """The recorded CRIU calls of a kept run: criu-calls.json, else from result.json."""
    path = run_dir / CALLS
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: cannot read: {exc}") from None
        if not isinstance(data, list):
            raise UsageError(f"{path}: must hold a list of calls")
        try:
            return [RecordedCall.from_json(Fields(c, f"[{i}]")) for i, c in enumerate(data)]
        except FieldError as exc:
            raise UsageError(f"{path}: {exc}") from None
    result = run_dir / "result.json"
    if result.exists():
        return criu_calls(run_dir, ScenarioResult.load(result))
    return []


# --- the whole set ----------------------------------------------------------------------------


def write_artifacts(
    run_dir: Path, result: ScenarioResult, backend: Backend | None = None
) -> list[str]:
    """Write every artifact of a kept run into run_dir; return the problems met.

    ``backend`` is the Backend that ran (for the CRIU version). Never raises: a half-written
    artifact must not turn a run's result into a traceback, so each part that fails is listed
    in artifacts-problems.txt instead.
    """
    criu = backend.criu if backend is not None else None
    steps: dict[str, Callable[[], object]] = {
        SIGNATURES: lambda: (run_dir / SIGNATURES).write_text(
            _signatures_text(highlight_logs(run_dir))
        ),
        CALLS: lambda: _write_json(run_dir / CALLS, [c.to_json() for c in criu_calls(run_dir, result)]),
        SUMMARY: lambda: _write_json(
            run_dir / SUMMARY, [summarize(d, run_dir).to_json() for d in image_sets(run_dir)]
        ),
        VERSIONS: lambda: _write_json(
            run_dir / VERSIONS,
            versions(criu.path if criu else None, criu.version() if criu else None),
        ),
    }
    problems = []
    for name, step in steps.items():
        try:
            step()
        # Deliberately broad: any failure here is a failure of the evidence, not of the run.
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
    if problems:
        try:
            (run_dir / PROBLEMS).write_text("\n".join(problems) + "\n")
        except OSError:
            pass
    return problems


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


# --- the bundle -------------------------------------------------------------------------------


def _packable(path: Path) -> bool:
    # Regular files and directories only: sockets and fifos cannot be packed, and a symlink
    # could point anywhere on this machine.
    mode = os.lstat(path).st_mode
    return stat.S_ISREG(mode) or stat.S_ISDIR(mode)


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Whoever unpacks it owns the files; the packer's user names mean nothing elsewhere.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def bundle(run_dir: Path, out: Path | None = None) -> Path:
    """Pack a kept run directory into one .tar.gz (paths inside start with the directory's
    name, never with '/'); by default next to the directory. Returns the bundle's path.

    The bundle holds the workloads' memory (pages-*.img), so it is written mode 0600, under a
    temporary name in the same directory and renamed when complete: a failure leaves nothing.
    """
    run_dir = run_dir.resolve()
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: not a directory")
    if not (run_dir / "result.json").exists() and not (run_dir / "images").is_dir():
        raise UsageError(f"{run_dir}: not a kept run directory (no result.json, no images/)")
    out = (out or run_dir.with_name(run_dir.name + ".tar.gz")).resolve()
    if out.is_relative_to(run_dir):
        raise UsageError(f"{out}: the bundle cannot be written inside the directory it packs")
    check_output_file(out, "bundle")
    paths = [run_dir, *sorted(run_dir.rglob("*"))]
    fd, partial = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w:gz") as tar:
            for path in paths:
                if _packable(path):
                    arcname = str(Path(run_dir.name, path.relative_to(run_dir)))
                    tar.add(path, arcname=arcname, recursive=False, filter=_anonymous)
        os.replace(partial, out)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return out
