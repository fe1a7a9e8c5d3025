"""The transport every other one builds on: ``local``, the restore reads the images where the
dump wrote them; and what all share (the destination's directory, shipping the images there)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness.criu import Backend, CriuCall, CriuOptions
from harness.criu.options import Action
from harness.errors import CriuError, UsageError

__all__ = ["DESTINATION_DIR", "TRANSPORTS", "Transport", "bring_back_stats", "check_transport",
           "ship"]

TRANSPORTS = ("local", "page-server", "lazy")
DESTINATION_DIR = "dst"
# Files of a dump that are not images: left where they were written.
_NOT_SHIPPED = (".log", ".out", ".pid", ".conf", ".highlighted.txt")


def check_transport(name: str) -> str:
    if name not in TRANSPORTS:
        raise UsageError(f"unknown transport {name!r}: choose one of {', '.join(TRANSPORTS)}")
    return name


class Transport:
    """``local``: the restore reads the images where the dump wrote them."""

    name = "local"
    # The dumped task lives on after its dump returns, until finish() (lazy): the migration
    # collects it only then, and rolls a failed migration back by abort() instead of a restore.
    holds_source = False

    def prepare(self, images_dirs: list[Path]) -> None:
        """Before the workload is frozen: set up what each dump into images_dirs will use
        (page servers, connections), so that it does not count in the downtime."""

    def dump(self, backend: Backend, pid: int, opts: CriuOptions, calls: list[CriuCall]) -> None:
        backend.dump(pid, opts, calls=calls)

    def restore(
        self, backend: Backend, opts: CriuOptions, calls: list[CriuCall]
    ) -> CriuCall:
        return backend.restore(self.restore_options(opts), calls=calls)

    def restore_options(self, opts: CriuOptions) -> CriuOptions:
        """The options a restore asked for with opts runs with."""
        return opts

    def dump_options(self, opts: CriuOptions) -> CriuOptions | None:
        """The options a dump asked for with opts runs with, if they are known before it
        starts (after prepare()); None if what they name is made at the dump."""
        return opts

    def warm(self, backend: Backend, action: Action, opts: CriuOptions, wait: bool = False) -> None:
        """Have the backend get ready for that action (Backend.warm) with the options it will
        run with, where they are known now. The file descriptors they name (a prepared
        connection) stay open until the action."""
        final = self.restore_options(opts) if action == "restore" else self.dump_options(opts)
        if final is not None:
            backend.warm(action, final, wait)

    def destination(self, images_dir: Path) -> Path:
        """Where the restore of the images dumped into images_dir reads them."""
        return images_dir

    def abort(self, images_dir: Path) -> None:
        """Give up a dump whose task is still held (holds_source): it lives on where it was."""

    def finish(self) -> list[CriuError]:
        """After the restores: wait for what still moves pages; the failures it ended with."""
        return []

    def close(self) -> None:
        """End whatever still runs (page servers, daemons); the run is over."""


def ship(source: Path, destination: Path) -> None:
    """The images of a dump that did not go to the destination by themselves (all but the
    pages a page server received), copied there as a migration tool would."""
    for entry in os.scandir(source):
        if entry.is_file() and not entry.name.endswith(_NOT_SHIPPED):
            if not (destination / entry.name).exists():
                shutil.copy2(entry.path, destination / entry.name)


def bring_back_stats(destination: Path, source: Path) -> None:
    """CRIU's restore statistics, next to the dump's (harness.stats reads both from one place)."""
    stats = destination / "stats-restore"
    if stats.exists() and destination != source:
        shutil.copy2(stats, source / "stats-restore")
