"""The ``rpc`` backend: CRIU's own Python bindings (pycriu) talking to ``criu swrk``."""

from __future__ import annotations

import os
import socket
from typing import Any

from harness.criu.backend import Backend, CriuCall
from harness.criu.options import (
    RPC_CONFIG,
    Action,
    CriuOptions,
    config_lines,
    rpc_config_args,
    rpc_fields,
)
from harness.criu.process import CriuProcess, env_record
from harness.errors import UsageError
from harness.fields import JsonObject


def _pycriu() -> Any:
    try:
        import pycriu
    except ImportError as exc:
        raise UsageError(
            f"pycriu cannot be imported ({exc}): run scripts/install-criu --venv .venv"
        ) from exc
    return pycriu


def rpc_config(extra_args: tuple[str, ...]) -> str:
    """The CRIU configuration file that carries extra_args over RPC (which has no field for
    arbitrary options); options it cannot express are a usage error."""
    try:
        return "\n".join(config_lines(extra_args)) + "\n"
    except UsageError as exc:
        raise UsageError(f"criu extra_args: {exc}") from None


def _ps_fd(opts: CriuOptions) -> bool:
    """Whether the request carries the page-server socket (a lazy dump takes it from the
    configuration file instead: see rpc_config_args)."""
    return opts.ps_socket is not None and not opts.lazy_pages


class RpcBackend(Backend):
    name = "rpc"

    def __init__(
        self, binary: str | None = None, timeout: float | None = None, fault: int | None = None
    ) -> None:
        super().__init__(binary, timeout, fault)
        self.pycriu = _pycriu()

    def describe(self, action: Action, opts: CriuOptions, pid: int | None) -> JsonObject:
        return {
            "binary": self.criu.path,
            "mode": "swrk",
            "request": action.upper(),
            "images_dir": str(opts.images_dir),
            **rpc_fields(action, opts, pid),
            **({"inherit_fd": [list(p) for p in opts.inherit_fds]} if opts.inherit_fds else {}),
            **({"external": list(opts.external)} if opts.external else {}),
            **({"ps": {"fd": opts.ps_socket}} if _ps_fd(opts) else {}),
            **env_record(opts),
        }

    def _request(self, opts: CriuOptions, call: CriuCall, pid: int | None) -> Any:
        pycriu = self.pycriu
        # pycriu would fork swrk itself, but in the harness's session (so a Ctrl-C would kill
        # CRIU mid-dump), without a deadline and without telling how it ended. Starting swrk
        # here keeps all three, and gives it its environment (CRIU_FAULT).
        if config := rpc_config_args(opts):
            (opts.images_dir / RPC_CONFIG).write_text(rpc_config(config))
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        inherit = opts.pass_fds()
        dirfd = os.open(opts.images_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with (opts.images_dir / f"{call.action}.out").open("wb") as out:
                criu = CriuProcess(
                    [self.criu.path, "swrk", str(theirs.fileno())],
                    out,
                    opts,
                    pass_fds=[theirs.fileno(), *inherit],
                    cgroup=opts.cgroup if call.action == "restore" else None,
                )
            theirs.close()
            errno = None
            resp = None
            try:
                # pycriu blocks in recv until swrk answers: the watchdog kills a swrk that
                # hangs, and the broken connection ends the wait.
                with criu.watchdog():
                    c = pycriu.criu()
                    c.use_fd(ours.fileno())
                    c.opts.images_dir_fd = dirfd
                    for name, value in rpc_fields(call.action, opts, pid).items():
                        setattr(c.opts, name, value)
                    for key, fd in opts.inherit_fds:
                        c.opts.inherit_fd.add(key=key, fd=fd)
                    c.opts.external.extend(opts.external)
                    if _ps_fd(opts):
                        c.opts.ps.fd = opts.ps_socket
                    resp = c.dump() if call.action == "dump" else c.restore()
            except pycriu.CRIUExceptionExternal as exc:
                errno = exc.errno
            except pycriu.CRIUException:
                errno = None  # the swrk connection broke: its exit status says why
            finally:
                # Closing our end ends swrk's request loop.
                ours.close()
                rc = criu.wait()
            if resp is None and criu.timed_out:
                raise self._failure(call, timed_out=criu.timeout)
            if resp is None:
                raise self._failure(call, returncode=rc if rc != 0 else None, errno=errno)
            return resp
        finally:
            theirs.close()
            ours.close()
            os.close(dirfd)

    def _dump(self, pid: int, opts: CriuOptions, call: CriuCall) -> None:
        self._request(opts, call, pid)

    def _restore(self, opts: CriuOptions, call: CriuCall) -> int:
        return int(self._request(opts, call, None).pid)
