"""CRIU behind one small interface, with two interchangeable backends chosen by name."""

from __future__ import annotations

from harness.criu.backend import Backend, CriuBinary, CriuCall
from harness.criu.cli import CliBackend
from harness.criu.log import log_signature, signature
from harness.criu.options import CriuOptions
from harness.criu.process import DEFAULT_TIMEOUT_S
from harness.criu.rpc import RpcBackend
from harness.errors import UsageError

BACKENDS: dict[str, type[Backend]] = {"rpc": RpcBackend, "cli": CliBackend}


def get_backend(
    name: str, binary: str | None = None, timeout: float | None = None, fault: int | None = None
) -> Backend:
    """The backend registered under name; an unknown name is a usage error. ``timeout`` and
    ``fault``, when given, apply to every action (over the scenario's own)."""
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise UsageError(
            f"unknown CRIU backend {name!r}: choose one of {', '.join(BACKENDS)}"
        ) from None
    return cls(binary, timeout, fault)


__all__ = [
    "BACKENDS",
    "DEFAULT_TIMEOUT_S",
    "Backend",
    "CliBackend",
    "CriuBinary",
    "CriuCall",
    "CriuOptions",
    "RpcBackend",
    "get_backend",
    "log_signature",
    "signature",
]
