"""CRIU image sets, decoded into a summary a person can read: the process tree, each process's
open files and memory maps.

Only the small metadata images are read (pstree, core, ids, fdinfo, files, mm); the page data
(pages-*.img) can be as large as the workload's memory and says nothing a summary needs.
``load_image`` is the harness's one reader of a CRIU image file, for the stats images too.
"""

from __future__ import annotations

import quopri
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.fields import JsonObject

__all__ = [
    "FdSummary",
    "ImageError",
    "ImageSet",
    "MapSummary",
    "ProcessSummary",
    "describe_file",
    "describe_vma",
    "image_sets",
    "load_image",
    "prot_string",
    "summarize",
]

# VMA status bits (criu/include/image.h), for naming the mappings that have no file.
VMA_AREA_STACK = 1 << 1
VMA_AREA_VSYSCALL = 1 << 2
VMA_AREA_VDSO = 1 << 3
VMA_AREA_HEAP = 1 << 5
VMA_FILE_PRIVATE = 1 << 6
VMA_FILE_SHARED = 1 << 7
VMA_ANON_SHARED = 1 << 8
VMA_AREA_SYSVIPC = 1 << 10
VMA_AREA_SOCKET = 1 << 11
VMA_AREA_VVAR = 1 << 12
VMA_AREA_AIORING = 1 << 13
VMA_AREA_MEMFD = 1 << 14
_SPECIAL = (
    (VMA_AREA_VDSO, "[vdso]"),
    (VMA_AREA_VVAR, "[vvar]"),
    (VMA_AREA_VSYSCALL, "[vsyscall]"),
    (VMA_AREA_STACK, "[stack]"),
    (VMA_AREA_HEAP, "[heap]"),
    (VMA_AREA_SYSVIPC, "[sysvipc]"),
    (VMA_AREA_AIORING, "[aio]"),
    (VMA_AREA_SOCKET, "[socket]"),
    (VMA_ANON_SHARED, "[anon shared]"),
)
MAP_SHARED = 0x01

# unix_sk_entry.type is the socket type (SOCK_STREAM...), sk_inet's family AF_*.
_SOCK_TYPES = {1: "stream", 2: "dgram", 3: "raw", 5: "seqpacket"}
_FAMILIES = {1: "unix", 2: "inet", 10: "inet6"}


class ImageError(HarnessError):
    """A CRIU image that cannot be read: pycriu is missing, or the file is torn or no image."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot read CRIU image {path}: {reason}")
        self.path = path
        self.reason = reason


def load_image(path: Path) -> JsonObject:
    """One CRIU image file decoded by pycriu (``{"magic": ..., "entries": [...]}``)."""
    if path.name.startswith("pages-"):
        # Raw page data, as large as the workload's memory: nothing here ever needs it.
        raise ImageError(path, "page data is never decoded")
    try:
        from pycriu import (
            images,  # imported late: only the rpc backend needs pycriu otherwise
        )
    except ImportError as exc:
        raise ImageError(path, f"pycriu cannot be imported: {exc}") from exc
    try:
        with path.open("rb") as f:
            image: JsonObject = images.load(f)
    # pycriu raises bare Exceptions (unknown magic) and protobuf's DecodeError alike.
    except Exception as exc:  # noqa: BLE001
        raise ImageError(path, f"{type(exc).__name__}: {exc}") from exc
    return image


@dataclass
class FdSummary:
    fd: int
    kind: str  # CRIU's fd type: REG, UNIXSK, INETSK, PIPE, ...
    path: str | None = None
    detail: JsonObject = field(default_factory=dict)


@dataclass
class MapSummary:
    start: str
    end: str
    prot: str  # "r-xp": as in /proc/PID/maps
    path: str | None = None


@dataclass
class ProcessSummary:
    pid: int
    ppid: int
    pgid: int
    sid: int
    threads: list[int]
    comm: str | None = None
    fds: list[FdSummary] = field(default_factory=list)
    maps: list[MapSummary] = field(default_factory=list)


@dataclass
class ImageSet:
    """One images directory (one dump): what it holds, and what could not be decoded."""

    images: str  # relative to the run directory
    complete: bool
    processes: list[ProcessSummary] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> JsonObject:
        return asdict(self)


def image_sets(run_dir: Path) -> list[Path]:
    """Every images directory under run_dir/images (images/<role> or images/cycle-N/<role>)."""
    root = run_dir / "images"
    if not root.is_dir():
        return []
    # A dump that failed early leaves a log but no images: its directory is listed too.
    return sorted(
        {p.parent for p in root.rglob("*") if p.suffix in (".img", ".log") and p.is_file()}
    )


def prot_string(prot: int, flags: int) -> str:
    """PROT_* and MAP_* bits as /proc/PID/maps spells them."""
    return "".join(
        (
            "r" if prot & 1 else "-",
            "w" if prot & 2 else "-",
            "x" if prot & 4 else "-",
            "s" if flags & MAP_SHARED else "p",
        )
    )


def _unix_name(value: Any) -> str:
    # pycriu quoted-printable-encodes unix socket names (they are bytes, abstract ones start
    # with a NUL); a bound path keeps its trailing NUL.
    raw = value if isinstance(value, bytes) else quopri.decodestring(str(value).encode())
    if raw.startswith(b"\0"):
        return "@" + raw[1:].rstrip(b"\0").decode(errors="replace")
    return raw.rstrip(b"\0").decode(errors="replace")


def describe_file(entry: JsonObject) -> tuple[str | None, JsonObject]:
    """The path (if the file has one) and the few facts that identify a files.img entry."""
    kind = entry.get("type", "UND")
    if kind == "REG" and "reg" in entry:
        reg = entry["reg"]
        return "/" + reg.get("name", "").lstrip("/"), {"flags": reg.get("flags"), "pos": reg.get("pos")}
    if kind == "UNIXSK" and "usk" in entry:
        usk = entry["usk"]
        name = _unix_name(usk.get("name", b""))
        detail = {
            "type": _SOCK_TYPES.get(usk.get("type", 0), usk.get("type")),
            "state": usk.get("state"),
            "ino": usk.get("ino"),
            "peer": usk.get("peer"),
        }
        return name or None, detail
    if kind == "INETSK" and "isk" in entry:
        isk = entry["isk"]
        return None, {
            "family": _FAMILIES.get(isk.get("family", 0), isk.get("family")),
            "type": _SOCK_TYPES.get(isk.get("type", 0), isk.get("type")),
            "state": isk.get("state"),
            "src": f"{','.join(map(str, isk.get('src_addr', [])))}:{isk.get('src_port')}",
            "dst": f"{','.join(map(str, isk.get('dst_addr', [])))}:{isk.get('dst_port')}",
        }
    if kind == "PIPE" and "pipe" in entry:
        return None, {"pipe_id": entry["pipe"].get("pipe_id")}
    if kind == "FIFO" and "fifo" in entry:
        return None, {"pipe_id": entry["fifo"].get("pipe_id")}
    if kind == "MEMFD" and "memfd" in entry:
        return "memfd:" + str(entry["memfd"].get("name", "")), {}
    if kind == "TTY" and "tty" in entry:
        return None, {"tty_info_id": entry["tty"].get("tty_info_id")}
    return None, {}


def describe_vma(
    vma: JsonObject, files: dict[int, JsonObject], stack: int | None = None
) -> MapSummary:
    """One mm.img VMA: where it is, its protection, and the file (or kind) behind it."""
    status = int(vma.get("status", 0))
    start, end = int(vma["start"]), int(vma["end"])
    path: str | None = None
    if stack is not None and start <= stack < end:
        path = "[stack]"  # CRIU sets no stack bit for the main stack: mm_start_stack tells
    elif status & (VMA_FILE_PRIVATE | VMA_FILE_SHARED | VMA_AREA_MEMFD):
        # For a file mapping, shmid is the id of the file in files.img.
        entry = files.get(int(vma.get("shmid", -1)))
        path = describe_file(entry)[0] if entry else f"file id {vma.get('shmid')}"
    else:
        path = next((name for bit, name in _SPECIAL if status & bit), None)
    return MapSummary(
        start=f"{start:x}",
        end=f"{end:x}",
        prot=prot_string(int(vma.get("prot", 0)), int(vma.get("flags", 0))),
        path=path,
    )


# Reads one image file, or raises ImageError (load_image; the tests pass their own).
Loader = Callable[[Path], JsonObject]


def summarize(images_dir: Path, run_dir: Path, load: Loader | None = None) -> ImageSet:
    """Decode one images directory; what cannot be decoded is listed in ``problems``."""
    rel = str(images_dir.relative_to(run_dir)) if images_dir.is_relative_to(run_dir) else str(images_dir)
    summary = ImageSet(images=rel, complete=(images_dir / "inventory.img").exists())
    if load is None:
        try:
            import pycriu.images  # noqa: F401  # said once here, not once per image
        except ImportError as exc:
            summary.problems.append(f"pycriu cannot be imported: {exc}")
            return summary
        load = load_image

    def entries(name: str) -> list[JsonObject]:
        path = images_dir / name
        if not path.exists():
            summary.problems.append(f"{name}: missing")
            return []
        try:
            return list(load(path)["entries"])
        except ImageError as exc:  # a damaged image must not stop the summary of the others
            summary.problems.append(f"{name}: cannot decode: {exc.reason}")
            return []

    if not summary.complete:
        summary.problems.append("no inventory.img: the dump did not complete")
        return summary
    files = {int(e["id"]): e for e in entries("files.img")}
    for item in entries("pstree.img"):
        pid = int(item["pid"])
        proc = ProcessSummary(
            pid=pid,
            ppid=int(item.get("ppid", 0)),
            pgid=int(item.get("pgid", 0)),
            sid=int(item.get("sid", 0)),
            threads=[int(t) for t in item.get("threads", [])],
        )
        core = entries(f"core-{pid}.img")
        if core:
            proc.comm = core[0].get("tc", {}).get("comm")
        ids = entries(f"ids-{pid}.img")
        if ids and "files_id" in ids[0]:
            for fdinfo in entries(f"fdinfo-{ids[0]['files_id']}.img"):
                entry = files.get(int(fdinfo["id"]))
                path, detail = describe_file(entry) if entry else (None, {})
                proc.fds.append(
                    FdSummary(fd=int(fdinfo["fd"]), kind=str(fdinfo.get("type")), path=path, detail=detail)
                )
        for mm in entries(f"mm-{pid}.img"):
            stack = mm.get("mm_start_stack")
            proc.maps.extend(describe_vma(v, files, stack) for v in mm.get("vmas", []))
        summary.processes.append(proc)
    return summary
