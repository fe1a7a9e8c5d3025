"""The keeper: a small process outside the workloads' tree that ends a run whose harness died.

A harness killed with SIGKILL runs no clean-up of its own. Its workloads (running, stopped by
a freeze, or restored) would live on, so each run starts a keeper in a session of its own: it
waits on a pidfd of the harness, and when the harness is gone it kills everything in the run's
cgroup and removes it. A parent-death signal inside the workloads would not do: CRIU restores
it, and the restored task would then die with the ``criu`` that restored it.

    python -m harness.keeper HARNESS_PID CGROUP_PATH [RUN_DIR]

With RUN_DIR it also releases what a CRIU killed with the harness left mounted there (its
cgroup yard, harness.criu.yard). On a normal end the harness cleans up itself and stops its
keeper with SIGTERM.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

from harness.cgroup import RunCgroup
from harness.criu import yard

__all__ = ["Keeper"]


class Keeper:
    """The harness's handle on its keeper process."""

    def __init__(
        self, cgroup: RunCgroup, log: Path | None = None, run_dir: Path | None = None
    ) -> None:
        self.cgroup = cgroup
        out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
        swept = [str(run_dir)] if run_dir is not None else []
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "harness.keeper", str(os.getpid()), str(cgroup.path),
                 *swept],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,  # a Ctrl-C or a killpg of the harness's group spares it
                close_fds=True,
            )
        finally:
            if not isinstance(out, int):
                out.close()

    def stop(self) -> None:
        """The harness ended the run itself: the keeper has nothing left to do."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def watch(harness: int, cgroup: RunCgroup, run_dir: Path | None = None) -> int:
    """Wait for the harness to exit, then empty and remove its run's cgroup, and release
    CRIU's mounts in run_dir."""
    try:
        pidfd = os.pidfd_open(harness)
    except ProcessLookupError:
        pidfd = None  # already gone: clean up at once
    if pidfd is not None:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        while not poller.poll(1000):
            pass
    left = cgroup.kill(timeout=10.0)
    cgroup.remove()
    if run_dir is not None:
        # The CRIU the harness ran died with it (a parent-death signal): nothing uses it.
        try:
            for released in yard.release(run_dir):
                print(f"keeper: released CRIU's cgroup yard {released}", file=sys.stderr)
        except OSError as exc:
            print(f"keeper: {exc}", file=sys.stderr)
    if left:
        print(f"keeper: could not kill {left} in {cgroup.path}", file=sys.stderr)
        return 1
    print(f"keeper: harness {harness} is gone; emptied and removed {cgroup.path}", file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    # SIGTERM is the harness saying it cleaned up: exit without touching anything.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if len(argv) not in (2, 3) or not argv[0].isdigit():
        print("usage: python -m harness.keeper HARNESS_PID CGROUP_PATH [RUN_DIR]",
              file=sys.stderr)
        return 2
    run_dir = Path(argv[2]) if len(argv) == 3 else None
    return watch(int(argv[0]), RunCgroup(Path(argv[1])), run_dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
