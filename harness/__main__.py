"""``criu-harness`` (and ``python -m harness``): the command line, interruptible from its first
line.

The console script starts here rather than in harness.cli, whose imports take a tenth of a
second: a Ctrl-C while they run must end in one line and exit status 130, not a traceback.
"""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from harness.cli import main as command_line

        return command_line()
    except BaseException as exc:
        # A Ctrl-C while a module is still being imported may come wrapped: raised inside a
        # class's creation (dataclasses' __set_name__), it is the cause of a RuntimeError.
        if not _interrupted(exc):
            raise
        sys.stderr.write("criu-harness: interrupted\n")
        return 130
    finally:
        # The command has ended: a Ctrl-C from here to the exit must not become a traceback.
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _interrupted(exc: BaseException | None) -> bool:
    """exc is a Ctrl-C, or was caused by one."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


if __name__ == "__main__":
    sys.exit(main())
