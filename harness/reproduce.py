"""Retrying a restore from kept images, with the options the run used, to reproduce a failure.

The images directory may be a kept run directory or an unpacked bundle. A restore that
succeeds is not left running: the restored processes are killed and reaped (the harness is
their child subreaper), so trying a restore leaves nothing behind but a new CRIU log.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import psutil

from harness.artifacts import HIGHLIGHTED, RecordedCall, highlight, load_calls
from harness.criu import CriuCall, get_backend
from harness.criu.options import PIDFILE, CriuOptions
from harness.errors import CriuError, UsageError
from harness.images import ImageError, load_image
from harness.process import Workload
from harness.result import ScenarioResult
from harness.supervisor import Supervisor
from harness.waiting import poll

__all__ = ["RestoreAttempt", "describe", "find_images", "options_from_call", "retry_restore", "run_dir_of"]

RETRY_LOG = "restore-retry"
_CYCLE = re.compile(r"^cycle-(\d+)$")

@dataclass
class RestoreAttempt:
    """One retried restore: of which role, from where, and how it ended."""

    role: str
    images_dir: Path
    backend: str
    ok: bool = False
    restored_pid: int | None = None
    status: str = ""  # what the restored process was doing before it was killed
    signature: str | None = None
    error: str = ""
    log_path: Path | None = None
    recorded_signature: str | None = None  # the signature of this restore in the run itself
    notes: list[str] = field(default_factory=list)

    @property
    def reproduced(self) -> bool | None:
        """Whether this attempt failed as the run did (None when the run's restore of this
        role did not fail, or was never tried)."""
        if self.recorded_signature is None:
            return None
        return not self.ok and self.signature == self.recorded_signature


def run_dir_of(path: Path) -> Path:
    """The run directory at path, or the one inside it (an unpacked bundle's parent)."""
    path = path.resolve()
    if not path.is_dir():
        raise UsageError(f"{path}: not a directory (unpack a bundle first: tar -xzf FILE)")
    if (path / "images").is_dir():
        return path
    inner = [p for p in path.iterdir() if p.is_dir() and (p / "images").is_dir()]
    if len(inner) == 1:
        return inner[0]
    raise UsageError(f"{path}: no images/ here: not a kept run directory or an unpacked bundle")


def find_images(run_dir: Path, cycle: int | None = None) -> tuple[int | None, dict[str, Path]]:
    """The images directories of one cycle by role: images/<role>/, or images/cycle-N/<role>/
    (the last cycle unless ``cycle`` says which). Only directories with a pstree.img count:
    a dump that failed leaves no images to restore."""
    root = run_dir / "images"
    cycles = {
        int(m.group(1)): p for p in root.iterdir() if p.is_dir() and (m := _CYCLE.match(p.name))
    }
    if cycles:
        n = cycle if cycle is not None else max(cycles)
        if n not in cycles:
            raise UsageError(f"{run_dir}: no cycle {n} (cycles: {', '.join(map(str, sorted(cycles)))})")
        base, which = cycles[n], n
    else:
        if cycle not in (None, 1):
            raise UsageError(f"{run_dir}: a single migration was kept, there is no cycle {cycle}")
        base, which = root, None
    roles = {
        p.name: p
        for p in sorted(base.iterdir())
        # A failed dump may leave an empty pstree.img; the inventory is written last.
        if (p / "pstree.img").is_file() and (p / "inventory.img").is_file()
    }
    return which, roles


def options_from_call(
    call: CriuCall | None, images_dir: Path, log_file: str
) -> tuple[CriuOptions, list[str]]:
    """The CriuOptions a recorded call ran with, moved to images_dir, plus notes on what cannot
    be repeated (inherited fds belonged to the process that ran the harness)."""
    recorded = call.criu_options if call is not None else None
    if not recorded:
        return CriuOptions(images_dir=images_dir, log_file=log_file), []
    opts = CriuOptions.from_json(recorded)
    notes = [f"not repeated: inherit-fd {key} (fd {fd} of the run)" for key, fd in opts.inherit_fds]
    # The run's cgroup is gone with it: the retry's restore does not run in it.
    return replace(opts, images_dir=images_dir, log_file=log_file, inherit_fds=(),
                   cgroup=None), notes


def _retry_log(images_dir: Path) -> str:
    """A log name no earlier attempt used: the run's own restore.log stays as it was."""
    n = 1
    while (images_dir / f"{RETRY_LOG}-{n}.log").exists():
        n += 1
    return f"{RETRY_LOG}-{n}.log"


def _recorded(
    calls: list[RecordedCall], cycle: int | None, role: str, action: str
) -> RecordedCall | None:
    found = [
        c for c in calls
        if c.role == role and c.call.action == action and (cycle is None or c.cycle == cycle)
    ]
    return found[-1] if found else None


def _restore_order(calls: list[RecordedCall], cycle: int | None, roles: dict[str, Path]) -> list[str]:
    """The roles in the order the run restored them, then those it never got to, in the order
    it dumped them."""
    order: list[str] = []
    for action in ("restore", "dump"):
        for c in calls:
            if c.call.action == action and (cycle is None or c.cycle == cycle):
                if c.role in roles and c.role not in order:
                    order.append(c.role)
    return order + [r for r in roles if r not in order]


def retry_restore(
    path: Path,
    backend: str | None = None,
    role: str | None = None,
    cycle: int | None = None,
    binary: str | None = None,
    timeout: float | None = None,
) -> list[RestoreAttempt]:
    """Restore the kept images at path (every role, in the run's order, up to the first
    failure; or only ``role``) and report each attempt; restored processes are killed.
    ``timeout``: seconds each restore may take (default: as the run's call had it)."""
    run_dir = run_dir_of(path)
    which, roles = find_images(run_dir, cycle)
    if not roles:
        raise UsageError(
            f"{run_dir}: no complete images to restore (the dump failed: see signatures.txt)"
        )
    if role is not None and role not in roles:
        raise UsageError(f"{run_dir}: no images for role {role!r} (roles: {', '.join(roles)})")
    calls = load_calls(run_dir)
    run_backend = _run_backend(run_dir)
    attempts: list[RestoreAttempt] = []
    with Supervisor("restore-retry") as supervisor:
        for name in [role] if role else _restore_order(calls, which, roles):
            images_dir = roles[name]
            recorded = _recorded(calls, which, name, "restore")
            chosen = backend or (recorded.call.backend if recorded else "") or run_backend
            opts, notes = options_from_call(
                recorded.call if recorded else None, images_dir, _retry_log(images_dir)
            )
            if recorded is None:
                notes.append("the run never restored this role: default restore options")
            attempt = RestoreAttempt(
                role=name,
                images_dir=images_dir,
                backend=chosen,
                log_path=opts.log_path,
                recorded_signature=_signature_of(recorded),
                notes=notes,
            )
            attempts.append(attempt)
            # CRIU will not overwrite a pidfile (O_EXCL): the run's own is recorded in
            # criu-calls.json already, and it is the harness's own file.
            (images_dir / PIDFILE).unlink(missing_ok=True)
            try:
                call = get_backend(chosen, binary, timeout).restore(opts)
            except CriuError as err:
                attempt.signature, attempt.error = err.signature, str(err)
                _highlight(opts.log_path)
                _reap_failed(_image_pids(images_dir))
                break
            assert call.restored_pid is not None
            workload = Workload(name=name, argv=[], run_dir=run_dir)
            workload.adopt(call.restored_pid)
            supervisor.workloads[name] = workload
            attempt.ok, attempt.restored_pid, attempt.status = True, call.restored_pid, workload.status()
            _highlight(opts.log_path)
    return attempts


def _image_pids(images_dir: Path) -> set[int]:
    """The pids (threads too) recorded in an images directory's pstree.img."""
    try:
        entries = load_image(images_dir / "pstree.img")["entries"]
    except ImageError:  # without pids there is just nothing to reap
        return set()
    pids: set[int] = set()
    for entry in entries:
        pids.add(int(entry["pid"]))
        pids.update(int(t) for t in entry.get("threads", []))
    return pids


def _reap_failed(pids: set[int], timeout: float = 5.0) -> None:
    """Collect what a failed restore leaves: CRIU kills the tasks it had made, but they die as
    zombies of the harness (their subreaper), and a zombie keeps its pid, so the next restore
    would fail with "Can't fork for PID: File exists" until the harness exits."""

    def ours() -> list[psutil.Process]:
        return [c for c in psutil.Process().children() if c.pid in pids]

    def collected() -> bool:
        for child in ours():
            try:
                if child.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(child.pid, os.WNOHANG)
            except (OSError, psutil.Error):
                continue
        return not ours()

    if not poll(collected, timeout=timeout, interval=0.01):
        for child in ours():  # alive after CRIU gave up on it: nothing may stay behind
            try:
                child.kill()
                os.waitpid(child.pid, 0)
            except (OSError, psutil.Error):
                continue


def _signature_of(recorded: RecordedCall | None) -> str | None:
    """The signature a recorded call failed with (its error text ends with it)."""
    if recorded is None or not recorded.call.error:
        return None
    if recorded.signature:
        return recorded.signature
    m = re.search(r"\): (.*) \[log: [^\]]*\]$", recorded.call.error)
    return m.group(1) if m else None


def _run_backend(run_dir: Path) -> str:
    """The backend the run used, from its result.json (rpc when it cannot be told)."""
    try:
        return ScenarioResult.load(run_dir / "result.json").backend or "rpc"
    except UsageError:
        return "rpc"


def _highlight(log: Path) -> None:
    try:
        with log.open(errors="replace") as f:
            lines, _ = highlight(f, log.name)
        log.with_name(log.name + HIGHLIGHTED).write_text("\n".join(lines) + "\n")
    except OSError:
        pass


def describe(attempts: list[RestoreAttempt]) -> list[str]:
    """The attempts as lines for a person."""
    lines = []
    for a in attempts:
        head = f"{a.role}: criu restore ({a.backend}) from {a.images_dir}"
        if a.ok:
            lines.append(f"{head}: restored as pid {a.restored_pid} ({a.status}); killed and reaped")
        else:
            lines.append(f"{head}: FAILED")
            lines.append(f"    signature: {a.signature or '- (no error line in the log)'}")
        for note in a.notes:
            lines.append(f"    note: {note}")
        if a.recorded_signature is not None:
            same = "yes" if a.reproduced else "no"
            lines.append(f"    the run failed with: {a.recorded_signature}")
            lines.append(f"    reproduced: {same}")
        lines.append(f"    log: {a.log_path}")
    return lines
