"""Private directories: where a run's sockets, logs and CRIU images live, and where reports go.

Everything here may hold CRIU images (a workload's memory) or logs, so whatever the harness
creates is readable by its owner only: directories 0700, files 0600.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from harness.errors import UsageError

__all__ = ["PREFIX", "RunDir", "check_output_dir", "check_output_file", "private_dir"]

PREFIX = "criu-harness-"


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
