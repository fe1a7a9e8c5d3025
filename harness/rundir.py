"""Private directories: where a run's sockets, logs and CRIU images live, where reports go, and
how many kept runs stay.

Everything here may hold CRIU images (a workload's memory) or logs, so whatever the harness
creates is readable by its owner only: directories 0700, files 0600.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from harness.errors import UsageError

__all__ = [
    "DEFAULT_KEEP_MAX",
    "KEEP_MAX_ENV",
    "MARKER",
    "PREFIX",
    "KeptRun",
    "RunDir",
    "check_output_dir",
    "check_output_file",
    "kept_runs",
    "private_dir",
    "prune",
]

PREFIX = "criu-harness-"
# Written into every run directory the harness makes: only a directory with this file (and
# the prefix) is ever pruned, so nothing else in the temp directory can be taken for one.
MARKER = ".criu-harness-run"
DEFAULT_KEEP_MAX = 20
KEEP_MAX_ENV = "CRIU_HARNESS_KEEP_MAX"


class RunDir:
    """A directory made with mkdtemp (mode 0700) for one scenario run.

    It lives in the system's temp directory, whose short path leaves room for the run's unix
    socket paths (at most 107 bytes), and it is never moved: CRIU images name the files a
    process had open by absolute path, so a moved run could not be restored again. Only this
    directory is ever deleted, and only while it is still the directory the harness made (not
    replaced by a link): the harness runs as root.
    """

    def __init__(self, name: str) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{name}-"))
        os.chmod(self.path, 0o700)
        self._ino = os.lstat(self.path).st_ino
        _write_marker(self.path)

    @classmethod
    def claim(cls, path: Path) -> RunDir:
        """The run directory of a workload arriving from another host, made here at the path
        it had there (CRIU reopens the workloads' files by path): only a new directory of the
        harness's own name, in this host's temp directory too."""
        base = Path(tempfile.gettempdir())
        if path.parent != base or not path.name.startswith(PREFIX):
            raise UsageError(f"run directory {path}: not one of the harness's in {base} (both "
                             "hosts need the same temp directory)")
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            raise UsageError(
                f"run directory {path}: already exists on this host (is the receiver on the "
                "source's own machine? it needs a file system of its own; on one machine, "
                "--transport page-server sends the pages across a veth pair)") from None
        self = cls.__new__(cls)
        self.path = path
        os.chmod(path, 0o700)
        self._ino = os.lstat(path).st_ino
        _write_marker(path)
        return self

    def __str__(self) -> str:
        return str(self.path)

    def subdir(self, *parts: str) -> Path:
        return private_dir(self.path.joinpath(*parts))

    def _ours(self) -> bool:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return False
        return stat.S_ISDIR(st.st_mode) and st.st_ino == self._ino

    def remove(self) -> None:
        if self._ours():
            shutil.rmtree(self.path)


# --- directories for reports and bundles ----------------------------------------------------


def private_dir(path: Path) -> Path:
    """Make path and any missing parents, each one the harness creates mode 0700 (``mkdir -p``
    would give the parents the umask's mode); directories already there are left as they are."""
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            if not directory.is_dir():
                raise
    return path


def check_output_dir(path: Path, what: str) -> None:
    """Refuse, before anything runs, a directory the harness could not write into: an
    existing file, or a place whose nearest existing parent is not a writable directory."""
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise UsageError(f"{what} {path}: exists and is not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"{what} {path}: directory not writable")
        return
    parent = path.parent
    while not parent.exists() and parent.parent != parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{what} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: cannot create it in {parent}: not writable")


def check_output_file(path: Path, what: str) -> None:
    """Refuse, before anything is written, a file path the harness could not write: an
    existing directory, or a file in a directory that does not exist or is not writable."""
    if path.is_dir():
        raise UsageError(f"{what} {path}: is a directory (name the file to write)")
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(f"{what} {path}: no such directory: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: directory {parent} not writable")


# --- kept run directories, and how many stay ------------------------------------------------


def _write_marker(path: Path) -> None:
    me = psutil.Process()
    marker = {"harness": "criu-harness", "pid": me.pid, "started": me.create_time(),
              "created": time.time()}
    fd = os.open(path / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(marker, f)


@dataclass(frozen=True)
class KeptRun:
    """A run directory of the harness's own, left in the run root."""

    path: Path
    created: float
    pid: int
    started: float

    @property
    def mine(self) -> bool:
        """Made by this very process (its results were just printed: never pruned)."""
        return self.pid == os.getpid() and abs(psutil.Process().create_time() - self.started) < 1

    @property
    def in_use(self) -> bool:
        """Its harness process still runs (another run, or another test session)."""
        if self.mine:
            return False
        try:
            proc = psutil.Process(self.pid)
            return abs(proc.create_time() - self.started) < 1
        except psutil.Error:
            return False


def run_root() -> Path:
    """Where RunDir makes run directories."""
    return Path(tempfile.gettempdir())


def kept_runs(root: Path | None = None) -> list[KeptRun]:
    """The harness's run directories in root, oldest first: a real directory (not a link)
    owned by this user, named with the harness's prefix, holding the harness's marker file."""
    root = root or run_root()
    found = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
                continue
            marker_path = Path(entry.path, MARKER)
            mst = os.lstat(marker_path)
            if not stat.S_ISREG(mst.st_mode) or mst.st_size > 4096:
                continue
            marker = json.loads(marker_path.read_text())
            found.append(KeptRun(Path(entry.path), float(marker["created"]), int(marker["pid"]),
                                 float(marker["started"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(found, key=lambda k: k.created)


def prune(keep_max: int, echo: Callable[[str], None], root: Path | None = None) -> list[Path]:
    """Remove the oldest kept run directories beyond keep_max, each with a line through echo.

    Directories of a harness that still runs are neither counted nor touched, and this
    process's own are counted but never removed."""
    runs = [k for k in kept_runs(root) if not k.in_use]
    excess = len(runs) - keep_max
    removed: list[Path] = []
    for run in runs:
        if excess <= 0:
            break
        if run.mine:
            continue
        try:
            shutil.rmtree(run.path)
        except OSError as exc:
            echo(f"pruned: cannot remove {run.path}: {exc.strerror}")
            continue
        removed.append(run.path)
        excess -= 1
        echo(f"pruned: {run.path} (an old kept run; keeping the newest {keep_max}, --keep-max)")
    return removed
