"""CRIU's cgroup yard, and the mounts a killed CRIU leaves of it.

To restore a task's cgroups CRIU mounts a tmpfs at ``.criu.cgyard.XXXXXX`` in its working
directory (the images directory) and each cgroup hierarchy under it, and unmounts them when it
is done. A CRIU killed during a restore (at its deadline, or with a harness killed with
SIGKILL) never gets there: seen here, eleven mounts stay under the images directory, which then
cannot be removed. ``release`` unmounts them (lazily: nothing may use them any more, since their
CRIU is gone) and removes the yard.
"""

from __future__ import annotations

import ctypes
import os
import re
from pathlib import Path

__all__ = ["YARD_PREFIX", "release", "yards"]

YARD_PREFIX = ".criu.cgyard."
MNT_DETACH = 2
MOUNTINFO = Path("/proc/self/mountinfo")


def _unescape(field: str) -> str:
    """A mountinfo path: spaces, tabs, newlines and backslashes are octal escapes there."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _mount_points(mountinfo: Path = MOUNTINFO) -> list[Path]:
    points = []
    for line in mountinfo.read_text().splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(Path(_unescape(fields[4])))
    return points


def yards(under: Path, mountinfo: Path = MOUNTINFO) -> list[Path]:
    """The yard directories mounted somewhere under ``under`` (each once, outermost first)."""
    found: list[Path] = []
    for point in _mount_points(mountinfo):
        if not point.is_relative_to(under):
            continue
        parts = point.relative_to(under).parts
        for i, part in enumerate(parts):
            if part.startswith(YARD_PREFIX):
                yard = under.joinpath(*parts[: i + 1])
                if yard not in found:
                    found.append(yard)
                break
    return found


def release(under: Path, mountinfo: Path = MOUNTINFO) -> list[Path]:
    """Unmount every yard under ``under`` with all that is mounted in it (a lazy unmount of the
    yard takes its submounts along) and remove the yard directories; return the yards
    released. Only for yards whose CRIU is gone."""
    found = yards(under, mountinfo)
    libc = ctypes.CDLL(None, use_errno=True)
    for yard in found:
        # A mount stacked on the yard hides the one below: unmount until none is left.
        for _ in range(8):
            if yard not in _mount_points(mountinfo):
                break
            if libc.umount2(os.fsencode(yard), MNT_DETACH) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"cannot unmount CRIU's cgroup yard: {os.strerror(err)}",
                              str(yard))
        try:
            os.rmdir(yard)
        except OSError:
            pass  # not empty or gone: the unmount is what matters
    return found
