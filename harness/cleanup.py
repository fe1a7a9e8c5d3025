"""``criu-harness cleanup``: ends the runs a harness left behind.

Each run keeps its workloads in a cgroup of its own, ``criu-harness/<harness pid>.<run>`` at
the root of the cgroup v2 hierarchy (harness.cgroup). A harness that ends, however it ends
(Ctrl-C, SIGTERM, SIGKILL through its keeper), empties and removes it. What can still be
left: the cgroup of a run whose keeper was killed too, or that ran where no keeper could start.
This finds those (every run whose harness pid is gone; with ``--all``, the live ones too), kills
what is in each, stopped tasks included, and removes it: one line each.

It also releases the cgroup yards a killed CRIU left mounted in a run directory
(harness.criu.yard), once no process uses that directory any more.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness import cgroup
from harness.criu import yard
from harness.rundir import PREFIX

__all__ = ["Cleaned", "cleanup", "leaked_yards"]


@dataclass
class Cleaned:
    """One leftover run cgroup, and what was done to it."""

    path: Path
    owner: int
    killed: list[int] = field(default_factory=list)
    stuck: list[int] = field(default_factory=list)  # still there after the kill
    removed: bool = False

    @property
    def ok(self) -> bool:
        return self.removed and not self.stuck

    def line(self) -> str:
        who = f"harness {self.owner}" if self.owner else "no harness pid in its name"
        killed = (f"killed {len(self.killed)} process(es): {' '.join(map(str, self.killed))}"
                  if self.killed else "empty")
        if self.stuck:
            return f"{self.path} ({who}): could not kill {' '.join(map(str, self.stuck))}"
        if not self.removed:
            return f"{self.path} ({who}): {killed}; could not remove it"
        return f"{self.path} ({who}): {killed}; removed"


def cleanup(
    include_live: bool = False,
    cgroups: Path | None = None,
    mounts: Path = Path("/"),
    echo: Callable[[str], None] = print,
) -> list[Cleaned]:
    """Kill and remove every leftover run cgroup in cgroups (default: the harness's own,
    ``criu-harness/`` at the cgroup v2 root), include_live taking the runs of live harnesses
    too; then release the CRIU yards left in run directories under mounts."""
    done = []
    for group in cgroup.leftovers(include_live=include_live, base=cgroups):
        cleaned = Cleaned(group.path, group.owner, killed=sorted(group.pids()))
        cleaned.stuck = group.kill()
        group.remove()
        cleaned.removed = not group.path.exists()
        echo(cleaned.line())
        done.append(cleaned)
    for path in leaked_yards(mounts):
        cleaned = Cleaned(path, 0)
        try:
            yard.release(path.parent)
            cleaned.removed = True
            echo(f"{path}: CRIU's cgroup yard, left mounted by a killed CRIU; unmounted")
        except OSError as exc:
            echo(f"{path}: CRIU's cgroup yard, left mounted by a killed CRIU; {exc}")
        done.append(cleaned)
    if not done:
        echo("no leftover run: nothing to clean up")
    return done


def _run_dir(path: Path) -> Path | None:
    """The harness run directory path lies in, if it lies in one."""
    for i, part in enumerate(path.parts):
        if part.startswith(PREFIX):
            return Path(*path.parts[: i + 1])
    return None


def _users(directory: Path) -> list[int]:
    """The pids of the processes whose working directory or an open file is in directory."""
    inside = f"{directory}/"
    users = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            links = [entry / "cwd", *(entry / "fd").iterdir()]
        except OSError:
            continue  # gone, or a kernel thread
        for link in links:
            try:
                target = os.readlink(link)
            except OSError:
                continue
            if target == str(directory) or target.startswith(inside):
                users.append(int(entry.name))
                break
    return users


def leaked_yards(under: Path) -> list[Path]:
    """CRIU cgroup yards mounted in a harness run directory under ``under`` that no process
    uses any more: what a CRIU killed during a restore left."""
    found = []
    for path in yard.yards(under):
        run_dir = _run_dir(path)
        if run_dir is not None and not _users(run_dir):
            found.append(path)
    return found
