"""pid 1 of a daemon's PID namespace (``Namespaces.init``): ``python -m harness.nsinit CHILD
EXITS PIDFILE``, executed by the launcher's child once the namespace is built.

A namespace ends with its init, and a daemon's launcher exits: so the program cannot be pid 1.
This init runs it as its child (CHILD, a pid of the namespace), reaps whatever is orphaned in
the namespace, and notes "child PID" and "exit PID STATUS" lines in EXITS (the file opened for
each line, never held open across a dump: CRIU would have to restore it at its size). Once the
namespace is empty it exits with the status of the process PIDFILE names, else its child's.
It is what CRIU dumps and restores: it imports only the standard library, and is executed
after the namespace's mounts are built, so every file it maps is on one CRIU can find.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

__all__ = ["init", "launcher_status"]


def _note(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")


def init(child: int, exits: str, pidfile: str) -> None:
    """Reap every process until none is left, then exit with the status of the one the
    pidfile names, else the child's."""
    # pid 1 ignores a signal it has no handler for, when it comes from inside: Python's own
    # SIGINT handler would make one a KeyboardInterrupt here.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _note(exits, f"child {child}")
    codes: dict[int, int] = {}
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        codes[pid] = os.waitstatus_to_exitcode(status)
        _note(exits, f"exit {pid} {codes[pid]}")
    try:
        main = int(Path(pidfile).read_text().strip()) if pidfile else child
    except (OSError, ValueError):
        main = child
    code = codes.get(main, codes.get(child, 0))
    os._exit(code if code >= 0 else 128 - code)


def launcher_status(exits: str) -> int | None:
    """The exit status of the program an init started (see Namespaces.init), once it
    exited."""
    try:
        lines = Path(exits).read_text().splitlines()
    except OSError:
        return None
    child = next((line.split()[1] for line in lines if line.startswith("child ")), None)
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "exit" and parts[1] == child:
            return int(parts[2])
    return None


if __name__ == "__main__":
    init(int(sys.argv[1]), sys.argv[2], sys.argv[3])
