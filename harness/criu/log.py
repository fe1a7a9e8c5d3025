"""Reading CRIU's log: which error line explains a failure (its *signature*)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

# "(00.012345) Error (criu/sk-unix.c:123): unix: ..." or, from a restored task's log lines,
# "(00.012345)   4242: Error (criu/...): ...".
_ERROR = re.compile(r"^\(\s*[\d.]+\)\s+(?:\d+:\s+)?(?P<line>Error \([^)]*\):\s*.*?)\s*$")

# Error lines that explain nothing: CRIU prints them on every run here (an unprivileged
# RLIMIT_NOFILE bump), or as the consequence of an earlier error.
HARMLESS = (re.compile(r"rlimit: Can't setup RLIMIT_NOFILE for self"),)
CONSEQUENCES = (
    re.compile(r"Dumping FAILED"),
    re.compile(r"Restoring FAILED"),
    re.compile(r"Pre-dumping FAILED"),
    re.compile(r"Can't dump (?:task|process)"),
)


def error_lines(lines: Iterable[str]) -> list[str]:
    """Every ``Error (file:line): message`` line, without its timestamp and pid prefix."""
    found = []
    for raw in lines:
        m = _ERROR.match(raw)
        if m:
            found.append(m.group("line"))
    return found


def signature(lines: Iterable[str]) -> str | None:
    """The error line that explains a failure: the first that is neither harmless nor a
    consequence of another; failing that, the first consequence; None if there is no error."""
    errors = [e for e in error_lines(lines) if not any(p.search(e) for p in HARMLESS)]
    causes = [e for e in errors if not any(p.search(e) for p in CONSEQUENCES)]
    if causes:
        return causes[0]
    return errors[0] if errors else None


def log_signature(path: Path | None) -> str | None:
    """The signature of a CRIU log file, or None if it is missing or shows no error."""
    if path is None or not path.exists():
        return None
    with path.open(errors="replace") as log:
        return signature(log)


def message(sig: str) -> str:
    """The message of a signature without CRIU's ``Error (file:line):`` source location,
    which changes from one CRIU version to the next."""
    return re.sub(r"^Error \([^)]*\):\s*", "", sig)


# "(00.060407) fault: CRIU sudden detach": a line CRIU itself wrote, with its timestamp.
_LINE = re.compile(r"^\(\s*[\d.]+\)\s+(?:\d+:\s+)?(?P<line>\S.*?)\s*$")


def last_message(path: Path | None) -> str | None:
    """CRIU's last own log line (its timestamp taken off): where it was when it was killed."""
    if path is None or not path.exists():
        return None
    last = None
    with path.open(errors="replace") as log:
        for raw in log:
            if m := _LINE.match(raw):
                last = m.group("line")
    return last
