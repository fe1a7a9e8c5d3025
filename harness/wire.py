"""The conversation between the two hosts of a migration (``run --destination`` and
``receive``): framed JSON messages over one TCP connection, some carrying a tar of files.

A frame is a 4-byte length, a JSON object and, if the object says ``"payload": N``, N bytes.
Every request gets one answer, ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``; a
refusal is raised on the asking side as a RemoteError with the other side's own words.

The files sent are what CRIU needs at the destination besides the pages: the images a dump
wrote locally and the run directory the workloads had open (CRIU reopens their files by path).
They are unpacked only inside the receiving run directory, and only plain files and
directories (no links, devices or absolute names): the receiving side runs as root.
"""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.errors import RemoteError

__all__ = ["DEFAULT_PORT", "MAX_PAYLOAD", "Channel", "pack", "parse_address", "unpack"]

# The receiver's port when the address names none; the page servers use 27100 and up.
DEFAULT_PORT = 27099
_HEADER = struct.Struct("!I")
MAX_HEADER = 16 << 20
# Images besides the pages and a run's logs: megabytes; a bound against a broken peer.
MAX_PAYLOAD = 1 << 30


def parse_address(text: str, what: str = "address") -> tuple[str, int]:
    """``HOST`` or ``HOST:PORT`` (an IPv4 address or a name), the port defaulting to
    DEFAULT_PORT; a UsageError-worthy ValueError names what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(DEFAULT_PORT)
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"{what} {text!r}: expected HOST or HOST:PORT")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"{what} {text!r}: port {port!r} is not a number") from None
    if not 0 < number < 65536:
        raise ValueError(f"{what} {text!r}: port {number} out of range")
    return host, number


class Channel:
    """One end of the conversation. Not thread-safe: one request at a time."""

    def __init__(self, sk: socket.socket, peer: str) -> None:
        self.sk = sk
        self.peer = peer

    def close(self) -> None:
        self.sk.close()

    def send(self, message: dict[str, Any], payload: bytes = b"") -> None:
        head = dict(message, payload=len(payload)) if payload else message
        data = json.dumps(head).encode()
        try:
            self.sk.sendall(_HEADER.pack(len(data)) + data)
            if payload:
                self.sk.sendall(payload)
        except OSError as exc:
            raise RemoteError(f"{self.peer}: connection lost while sending: {exc}") from None

    def receive(self) -> tuple[dict[str, Any], bytes]:
        """The next message and its payload; RemoteError if the peer went away."""
        (size,) = _HEADER.unpack(self._exactly(_HEADER.size))
        if size > MAX_HEADER:
            raise RemoteError(f"{self.peer}: a message of {size} bytes: not the harness's")
        try:
            message = json.loads(self._exactly(size))
        except ValueError as exc:
            raise RemoteError(f"{self.peer}: not a message of the harness: {exc}") from None
        if not isinstance(message, dict):
            raise RemoteError(f"{self.peer}: not a message of the harness")
        length = message.pop("payload", 0)
        if not isinstance(length, int) or not 0 <= length <= MAX_PAYLOAD:
            raise RemoteError(f"{self.peer}: payload of {length!r} bytes refused")
        return message, self._exactly(length) if length else b""

    def ask(self, message: dict[str, Any], payload: bytes = b"",
            timeout: float | None = None) -> tuple[dict[str, Any], bytes]:
        """Send a request and wait (at most timeout seconds, None: as the socket is) for its
        answer; a refusal is raised with the peer's words."""
        self.send(message, payload)
        old = self.sk.gettimeout()
        if timeout is not None:
            self.sk.settimeout(timeout)
        try:
            answer, data = self.receive()
        except TimeoutError:
            raise RemoteError(
                f"{self.peer}: no answer to {message.get('op')!r} within {timeout:g} s") from None
        finally:
            self.sk.settimeout(old)
        if not answer.get("ok"):
            raise RemoteError(f"{self.peer}: {answer.get('error') or 'refused'}")
        return answer, data

    def answer(self, message: dict[str, Any] | None = None, payload: bytes = b"") -> None:
        self.send({"ok": True, **(message or {})}, payload)

    def refuse(self, error: str) -> None:
        self.send({"ok": False, "error": error})

    def _exactly(self, n: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < n:
            try:
                chunk = self.sk.recv(min(n - len(chunks), 1 << 20))
            except TimeoutError:
                raise
            except OSError as exc:
                raise RemoteError(f"{self.peer}: connection lost: {exc}") from None
            if not chunk:
                raise RemoteError(f"{self.peer}: the other side closed the connection")
            chunks += chunk
        return bytes(chunks)


def pack(base: Path, paths: Iterable[Path]) -> bytes:
    """A tar of the plain files and directories among paths (directories with all they hold),
    named relative to base; sockets, links and the rest are left out."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path in paths:
            for entry in [path, *sorted(path.rglob("*"))] if path.is_dir() else [path]:
                if entry.is_symlink() or not (entry.is_file() or entry.is_dir()):
                    continue
                tar.add(entry, arcname=str(entry.relative_to(base)), recursive=False)
    return out.getvalue()


def unpack(data: bytes, into: Path) -> list[str]:
    """Unpack a tar made by pack() inside into, keeping modes and times; raise RemoteError
    naming a member that is anything but a plain file or directory below into."""
    names = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        members = tar.getmembers()
        for member in members:
            name = member.name
            if (not (member.isfile() or member.isdir()) or os.path.isabs(name)
                    or ".." in Path(name).parts):
                raise RemoteError(f"refused to unpack {name!r}: only files below the run "
                                  "directory are taken")
            names.append(name)
        # data_filter refuses what the checks above refuse too, and drops set-id bits.
        tar.extractall(into, members=members, filter="data")
    return names
