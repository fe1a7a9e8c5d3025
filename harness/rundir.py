"""Private run directories: where a run's sockets, logs and CRIU images live."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

PREFIX = "criu-harness-"


class RunDir:
    """A directory made with mkdtemp (mode 0700) for one scenario run.

    Only this directory is ever deleted, and only when it is still the directory the harness
    made (not replaced by a link): the harness runs as root.
    """

    def __init__(self, name: str, base: Path | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{name}-", dir=base))
        os.chmod(self.path, 0o700)
        self._ino = os.lstat(self.path).st_ino

    def __str__(self) -> str:
        return str(self.path)

    def subdir(self, *parts: str) -> Path:
        path = self.path.joinpath(*parts)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def _ours(self) -> bool:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return False
        return stat.S_ISDIR(st.st_mode) and st.st_ino == self._ino

    def remove(self) -> None:
        if self._ours():
            shutil.rmtree(self.path)

    def keep(self, into: Path | None = None) -> Path:
        """Keep the run's files; with into, move them there (for a report directory)."""
        if into is None or not self._ours():
            return self.path
        into.mkdir(parents=True, exist_ok=True)
        dest = into / self.path.name.removeprefix(PREFIX)
        shutil.move(str(self.path), dest)
        self.path = dest
        self._ino = os.lstat(dest).st_ino
        return dest
