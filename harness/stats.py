"""CRIU's own account of a dump and a restore: the ``stats-dump`` and ``stats-restore`` images.

CRIU writes them into the images directory (times in microseconds, counts in pages). Read
next to the harness's timing of the same steps, they tell where a migration's time went: in
CRIU (freezing, writing pages, forking) or around it (waiting, reaping, polling).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.fields import Fields, JsonObject
from harness.images import load_image

__all__ = ["CriuStats", "RoleStats", "image_bytes", "read_stats"]

DUMP_STATS = "stats-dump"
RESTORE_STATS = "stats-restore"
# What the harness itself writes into an images directory: evidence, not the image.
_NOT_IMAGE = (".log", ".out", ".conf", ".pid")


@dataclass(frozen=True)
class CriuStats:
    """One process tree's dump and restore as CRIU measured them (ms, pages)."""

    freezing_ms: float | None = None  # seizing the tasks (CRIU's own freeze)
    frozen_ms: float | None = None  # from frozen to dumped: the tasks could not run
    memdump_ms: float | None = None  # collecting the pages
    memwrite_ms: float | None = None  # writing them into the image
    pages_scanned: int | None = None
    pages_written: int | None = None
    restore_ms: float | None = None
    forking_ms: float | None = None
    pages_restored: int | None = None

    def to_json(self) -> JsonObject:
        return asdict(self)

    @classmethod
    def from_json(cls, f: Fields) -> CriuStats:
        ms = {k: f.optional_number(k) for k in cls.__dataclass_fields__ if k.endswith("_ms")}
        return cls(
            **ms,
            pages_scanned=f.optional_integer("pages_scanned"),
            pages_written=f.optional_integer("pages_written"),
            pages_restored=f.optional_integer("pages_restored"),
        )


def _ms(entry: JsonObject, key: str) -> float | None:
    value = entry.get(key)
    return round(value / 1e3, 3) if isinstance(value, int) else None


def _entry(path: Path, kind: str) -> JsonObject:
    """The one entry of a stats image, or {} when CRIU did not write it (a failed action);
    a torn one raises ImageError."""
    if not path.exists():
        return {}
    entries = load_image(path).get("entries") or [{}]
    entry: JsonObject = entries[0].get(kind, {})
    return entry


def read_stats(images_dir: Path) -> CriuStats:
    """CRIU's statistics of the dump and restore whose images are in images_dir."""
    dump = _entry(images_dir / DUMP_STATS, "dump")
    restore = _entry(images_dir / RESTORE_STATS, "restore")
    return CriuStats(
        freezing_ms=_ms(dump, "freezing_time"),
        frozen_ms=_ms(dump, "frozen_time"),
        memdump_ms=_ms(dump, "memdump_time"),
        memwrite_ms=_ms(dump, "memwrite_time"),
        pages_scanned=dump.get("pages_scanned"),
        pages_written=dump.get("pages_written"),
        restore_ms=_ms(restore, "restore_time"),
        forking_ms=_ms(restore, "forking_time"),
        pages_restored=restore.get("pages_restored"),
    )


def image_bytes(images_dir: Path) -> int:
    """The size of the checkpoint on disk: every file CRIU wrote, logs aside."""
    total = 0
    try:
        entries = list(os.scandir(images_dir))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.is_file(follow_symlinks=False) and not entry.name.endswith(_NOT_IMAGE):
            total += entry.stat(follow_symlinks=False).st_size
    return total


@dataclass
class RoleStats:
    """One role's migration as measured: CRIU's statistics (or why they could not be read),
    the image size on disk, and the harness's own time per step (``dump_ms``, ...)."""

    criu: CriuStats | None = None
    criu_error: str | None = None
    image_bytes: int = 0
    harness: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> JsonObject:
        criu = self.criu.to_json() if self.criu is not None else {"error": self.criu_error}
        return {"criu": criu, "image_bytes": self.image_bytes, "harness": self.harness}

    @classmethod
    def from_json(cls, f: Fields) -> RoleStats:
        criu = f.obj("criu")
        error = criu.optional_text("error")
        stats = None if error is not None or not criu.data else CriuStats.from_json(criu)
        return cls(stats, error, f.integer("image_bytes", 0), f.number_map("harness"))
