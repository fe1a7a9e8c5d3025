"""Echo pairs over shared memory with semaphores, each role in its own tree: SysV (shmget and
a semget set) or POSIX (shm_open and two sem_open semaphores, both files in /dev/shm).

    python -m harness.workloads.shm sysv|posix server --dir D [--events E]
    python -m harness.workloads.shm sysv|posix client --dir D [--events E] [--interval ...]

The shared region holds two frames, the request and the reply. The client writes a request
and posts the request semaphore; the server waits on it, writes the reply and posts the
reply semaphore. The server publishes the SysV ids in D/ipc.ids, the POSIX names in
D/ipc.names. The workloads are killed, never asked to leave, so each server first removes
what killed runs left behind (stale: see STALE_S).
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.workloads import libc
from harness.workloads.client import run_client
from harness.workloads.events import EventLog
from harness.workloads.protocol import GREETING, frame
from harness.workloads.rendezvous import publish, read_published
from harness.workloads.tree import loop_arguments, serve_frames

SHM_PREFIX = "criu-harness-"  # POSIX names (/dev/shm/<name>) start with it, then the server pid


@dataclass
class Region:
    """The shared frames and the two semaphores, whichever API made them."""

    address: int
    size: int
    post: Callable[[int], None]  # post(which): 0 requests, 1 replies
    wait: Callable[[int, float | None], None]
    keep: object = None  # what must stay alive as long as the region (a Python mapping)

    def write(self, slot: int, data: bytes) -> None:
        libc.poke(self.address + slot * self.size, data)

    def read(self, slot: int) -> bytes:
        return libc.peek(self.address + slot * self.size, self.size)


# --- SysV ---------------------------------------------------------------------------------------

# Keys 0x4352xxxx ("CR"): the harness's own, so that stale objects of killed runs can be told
# from anyone else's and removed. The shared memory and the semaphore set share one key.
KEY_BASE, KEY_MASK = 0x43520000, 0xFFFF0000
# Objects of a run that the harness killed stay behind; older than this, and their creator
# gone, they are stale. (A run's own are never this old: runs take seconds or minutes.)
STALE_S = 600.0


def _sysvipc(kind: str) -> list[dict[str, int]]:
    """The rows of /proc/sysvipc/<kind> (shm, sem), by column name."""
    try:
        lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
    except OSError:
        return []
    head = lines[0].split()
    return [dict(zip(head, (int(v) for v in line.split()))) for line in lines[1:] if line.strip()]


def sweep_stale_sysv() -> None:
    """Remove the harness's SysV objects left by killed runs: memory nobody has attached, whose
    creator is gone, unchanged for STALE_S (not a run between its dump and its restore), and
    the semaphore set of the same key."""
    old = time.time() - STALE_S
    for row in _sysvipc("shm"):
        if ((row["key"] & KEY_MASK) == KEY_BASE and row["nattch"] == 0 and row["ctime"] < old
                and not _alive(row["cpid"])):
            libc.shm_remove(row["shmid"])
            for sem in _sysvipc("sem"):
                if sem["key"] == row["key"]:
                    libc.sem_remove(sem["semid"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def sysv_region(args: argparse.Namespace, create: bool) -> Region:
    ids = os.path.join(args.dir, "ipc.ids")
    if create:
        sweep_stale_sysv()
        key = KEY_BASE | (zlib.crc32(args.dir.encode()) & 0xFFFF)
        for _ in range(0x10000):  # a key in use (a run at the same time): the next one
            try:
                shmid = libc.shmget(key, 2 * args.size)
                break
            except FileExistsError:
                key = KEY_BASE | ((key + 1) & 0xFFFF)
        semid = libc.semget(key, 2)
        publish(ids, f"{shmid} {semid}")
        print(f"sysv server: shm {shmid}, semaphores {semid} (key {key:#x})", flush=True)
    else:
        shmid, semid = (int(v) for v in read_published(ids).split())
    return Region(
        libc.shmat(shmid),
        args.size,
        lambda which: libc.semop(semid, which, 1),
        lambda which, timeout: libc.semop(semid, which, -1, timeout),
    )


# --- POSIX --------------------------------------------------------------------------------------


def posix_names(base: str) -> tuple[str, str, str]:
    return f"/{base}", f"/{base}.req", f"/{base}.rep"


def sweep_stale_posix() -> None:
    """Remove the /dev/shm files of killed runs: named after a server that is gone, and
    unchanged for STALE_S (see sweep_stale_sysv)."""
    try:
        entries = os.listdir("/dev/shm")
    except OSError:
        return
    old = time.time() - STALE_S
    for entry in entries:
        name = entry.removeprefix("sem.")
        if not name.startswith(SHM_PREFIX):
            continue
        pid = name.removeprefix(SHM_PREFIX).split("-", 1)[0]
        path = os.path.join("/dev/shm", entry)
        try:
            if pid.isdigit() and not _alive(int(pid)) and os.stat(path).st_mtime < old:
                os.unlink(path)
        except OSError:
            pass


def posix_region(args: argparse.Namespace, create: bool) -> Region:
    names = os.path.join(args.dir, "ipc.names")
    if create:
        sweep_stale_posix()
        # The server's pid in the names: whose they are, once the run is gone.
        base = f"{SHM_PREFIX}{os.getpid()}-{os.path.basename(os.path.normpath(args.dir))[-8:]}"
    else:
        base = read_published(names)
    shm_name, req_name, rep_name = posix_names(base)
    flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
    fd = os.open(f"/dev/shm{shm_name}", flags, 0o600)  # what shm_open() does
    if create:
        os.ftruncate(fd, 2 * args.size)
    memory = mmap.mmap(fd, 2 * args.size, mmap.MAP_SHARED)
    sems = [libc.sem_open(req_name, create), libc.sem_open(rep_name, create)]
    if create:
        publish(names, base)
        print(f"posix server: shm {shm_name}, semaphores {req_name} {rep_name}", flush=True)
    return Region(
        ctypes.addressof(ctypes.c_char.from_buffer(memory)),
        args.size,
        lambda which: libc.sem_post(sems[which]),
        lambda which, timeout: libc.sem_wait(sems[which], timeout),
        keep=memory,
    )


def remove_published(api: str, directory: str) -> None:
    """Remove what the server of this run directory made (for whoever killed it: a test)."""
    try:
        text = Path(directory, "ipc.ids" if api == "sysv" else "ipc.names").read_text().strip()
    except OSError:
        return
    if api == "sysv":
        shmid, semid = (int(v) for v in text.split())
        libc.shm_remove(shmid)
        libc.sem_remove(semid)
        return
    for name in posix_names(text):
        for entry in (name, "/sem." + name.lstrip("/")):
            try:
                os.unlink("/dev/shm" + entry)
            except OSError:
                pass


# --- the roles ----------------------------------------------------------------------------------

REQUEST, REPLY_SLOT = 0, 1


def serve(region: Region, events: EventLog) -> int:
    def receive() -> bytes:
        region.wait(REQUEST, None)
        return region.read(REQUEST)

    def answer(data: bytes) -> None:
        region.write(REPLY_SLOT, data)
        region.post(REPLY_SLOT)

    return serve_frames(receive, answer, events)


def client(region: Region, args: argparse.Namespace) -> int:
    def send(seq: int) -> None:
        region.write(REQUEST, frame(seq, GREETING, args.size))
        region.post(REQUEST)

    def recv(timeout: float) -> bytes:
        region.wait(REPLY_SLOT, timeout)
        return region.read(REPLY_SLOT)

    return run_client(send, recv, EventLog(args.events), args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.workloads.shm")
    parser.add_argument("api", choices=("sysv", "posix"))
    parser.add_argument("role", choices=("server", "client"))
    parser.add_argument("--dir", required=True, help="the run directory: where the pair meets")
    loop_arguments(parser)
    args = parser.parse_args(argv)
    server = args.role == "server"
    region = (sysv_region if args.api == "sysv" else posix_region)(args, server)
    if server:
        return serve(region, EventLog(args.events))
    return client(region, args)


if __name__ == "__main__":
    sys.exit(main())
