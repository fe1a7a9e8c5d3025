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
