"""The datagram echo pair with the server's state on a GPU: what CRIU's CUDA plugin must carry.

    python -m harness.workloads.gpu_dgram server --socket S [--events E] [--gpu-mb N]
                                                 [--state cuda|host] [--libcuda PATH]
    python -m harness.workloads.gpu_dgram client --socket C --server S [--events E] [...]

The server keeps a reply counter and N MiB of ballast in device memory (CUDA driver API through
ctypes: no toolkit needed). For each request it adds one to the counter on the device, checks
one chunk of the ballast against the pattern written at start, and answers
``<seq> OK,I got it! counter=<n> ballast=ok``. The client checks that the counter follows on
from reply to reply (``continuity``): a migration that lost or staled device memory shows as a
reset or a jump, logged as a client error like any other.

``--state host`` keeps the same state in host memory instead: the same protocol on a machine
without a GPU, which is how the harness tests everything but CUDA itself.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
from typing import Any, Protocol

from harness.workloads.client import run_client
from harness.workloads.continuity import CounterCheck, parse_reply
from harness.workloads.cuda import LIBCUDA, Context, CudaError
from harness.workloads.events import EventLog
from harness.workloads.protocol import (
    GREETING,
    REPLY,
    bind_path,
    client_arguments,
    frame,
    parse,
    server_arguments,
)

CHUNK = 1 << 20  # the ballast is checked one chunk per request, round the chunks
WORD = struct.Struct("<I")


def pattern(chunk: int) -> int:
    """The 32-bit word chunk number chunk is filled with: a different one for each chunk, so a
    chunk restored in another's place shows."""
    return (0x9E3779B1 * (chunk + 1)) & 0xFFFFFFFF


class State(Protocol):
    """Where the server keeps its counter and ballast."""

    where: str

    def increment(self) -> int:
        """Add one to the counter where it lives; the new value."""

    def word(self, chunk: int, index: int) -> int:
        """Word index of ballast chunk chunk, read from where it lives."""


class HostState:
    """Counter and ballast in host memory (a bytearray each)."""

    where = "host memory"

    def __init__(self, megabytes: int) -> None:
        self.counter = bytearray(8)
        self.ballast = bytearray()
        for chunk in range(megabytes):
            self.ballast += WORD.pack(pattern(chunk)) * (CHUNK // WORD.size)

    def increment(self) -> int:
        value = struct.unpack("<Q", self.counter)[0] + 1
        self.counter[:] = struct.pack("<Q", value)
        return int(value)

    def word(self, chunk: int, index: int) -> int:
        return int(WORD.unpack_from(self.ballast, chunk * CHUNK + index * WORD.size)[0])


class DeviceState:
    """Counter and ballast in device memory, read and written through the driver each time."""

    def __init__(self, megabytes: int, device: int = 0, library: str = LIBCUDA) -> None:
        self.ctx = Context(device, library)
        self.where = f"device memory of {self.ctx.device_name}"
        self.counter = self.ctx.alloc(8)
        self.counter.write(bytes(8))
        self.ballast = self.ctx.alloc(megabytes * CHUNK) if megabytes else None
        for chunk in range(megabytes):
            assert self.ballast is not None
            self.ballast.fill32(pattern(chunk), offset=chunk * CHUNK, size=CHUNK)
        self.ctx.synchronize()  # ready means written: the harness may dump from here on

    def increment(self) -> int:
        value = struct.unpack("<Q", self.counter.read(8))[0] + 1
        self.counter.write(struct.pack("<Q", value))
        return int(value)

    def word(self, chunk: int, index: int) -> int:
        assert self.ballast is not None
        return int(WORD.unpack(self.ballast.read(WORD.size, chunk * CHUNK + index * WORD.size))[0])


def open_state(kind: str, megabytes: int, library: str = LIBCUDA) -> State:
    return DeviceState(megabytes, library=library) if kind == "cuda" else HostState(megabytes)


def check_ballast(state: State, megabytes: int, count: int) -> str:
    """Request count's look at the ballast: one word of one chunk, going round the chunks
    (and through each chunk's words on later rounds). "ok", or "bad@<chunk>"."""
    if not megabytes:
        return "ok"
    chunk = count % megabytes
    index = (count // megabytes) % (CHUNK // WORD.size)
    return "ok" if state.word(chunk, index) == pattern(chunk) else f"bad@{chunk}"


def serve(args: argparse.Namespace) -> int:
    # Before binding: the harness takes the bound socket as "ready", device memory included.
    try:
        state = open_state(args.state, args.gpu_mb, args.libcuda)
    except CudaError as exc:
        print(f"gpu_dgram server: {exc}", file=sys.stderr, flush=True)
        return 1
    events = EventLog(args.events)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    bind_path(sock, args.socket)
    events.emit("start", socket=args.socket, state=state.where, gpu_mb=args.gpu_mb)
    print(f"datagram server on {args.socket}: counter and {args.gpu_mb} MiB in {state.where}",
          flush=True)
    while True:
        data, peer = sock.recvfrom(args.size)
        seq, _ = parse(data)
        count = state.increment()
        ballast = check_ballast(state, args.gpu_mb, count)
        events.emit("received", seq, peer=peer, counter=count, ballast=ballast)
        if not peer:
            events.emit("error", seq, error="no sender address: cannot reply")
            continue
        try:
            sock.sendto(frame(seq, f"{REPLY} counter={count} ballast={ballast}", args.size), peer)
        except OSError as exc:
            events.emit("error", seq, error=f"sendto {peer}: {exc}")


def client(args: argparse.Namespace) -> int:
    events = EventLog(args.events)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    bind_path(sock, args.socket)
    print(f"gpu datagram client {args.socket} -> {args.server}", flush=True)
    check = CounterCheck()

    def send(seq: int) -> None:
        sock.sendto(frame(seq, GREETING, args.size), args.server)

    def recv(timeout: float) -> bytes:
        sock.settimeout(timeout)
        return sock.recv(args.size)

    def on_reply(seq: int, text: str) -> dict[str, Any]:
        carried = parse_reply(text)
        if carried is None:
            events.emit("error", seq, error=f"reply carries no counter: {text!r}")
            return {}
        counter, ballast = carried
        if (broken := check.see(seq, counter)) is not None:
            events.emit("error", seq, error=str(broken))
        if ballast != "ok":
            events.emit("error", seq, error=f"GPU ballast check failed: {ballast}")
        return {"counter": counter}

    return run_client(send, recv, events, args, on_reply)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.workloads.gpu_dgram")
    roles = parser.add_subparsers(dest="role", required=True)
    server = roles.add_parser("server")
    server_arguments(server)
    server.add_argument("--gpu-mb", type=int, default=0, metavar="N",
                        help="hold N MiB of ballast beside the counter, every chunk written")
    server.add_argument("--state", choices=("cuda", "host"), default="cuda",
                        help="where the counter and ballast live: on the GPU (default), or in "
                             "host memory (the same protocol without a GPU)")
    server.add_argument("--libcuda", default=LIBCUDA, metavar="PATH",
                        help=f"the CUDA driver library to load (default: {LIBCUDA})")
    client_arguments(roles.add_parser("client"))
    args = parser.parse_args(argv)
    return serve(args) if args.role == "server" else client(args)


if __name__ == "__main__":
    sys.exit(main())
