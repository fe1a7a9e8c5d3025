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
    except KeyboardInterrupt:
        sys.stderr.write("criu-harness: interrupted\n")
        return 130
    except RuntimeError as exc:
        # A Ctrl-C while a module defines a dataclass (tenacity does, on import) comes out of
        # Python's __set_name__ call as "RuntimeError: Error calling __set_name__ ...".
        if not isinstance(exc.__cause__, KeyboardInterrupt):
            raise
        sys.stderr.write("criu-harness: interrupted\n")
        return 130
    finally:
        # The command has ended: a Ctrl-C from here to the exit must not become a traceback.
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
