"""The ``rpc`` backend: CRIU's own Python bindings (pycriu) talking to ``criu swrk``."""

from __future__ import annotations

import os
import socket
import subprocess
from typing import Any

from harness.criu.backend import Backend, CriuCall, wait_criu
from harness.criu.options import (
    RPC_CONFIG,
    Action,
    CriuOptions,
    config_lines,
    rpc_config_args,
    rpc_fields,
)
from harness.errors import UsageError


def _pycriu() -> Any:
    try:
        import pycriu
    except ImportError as exc:
        raise UsageError(
            f"pycriu cannot be imported ({exc}): run scripts/install-criu --venv .venv"
        ) from exc
    return pycriu


class RpcBackend(Backend):
    name = "rpc"

    def __init__(self, binary: str | None = None) -> None:
        super().__init__(binary)
        self.pycriu = _pycriu()

    def describe(self, action: Action, opts: CriuOptions, pid: int | None) -> dict[str, Any]:
        return {
            "binary": self.criu.path,
            "mode": "swrk",
            "request": action.upper(),
            "images_dir": str(opts.images_dir),
            **rpc_fields(action, opts, pid),
            **({"inherit_fd": [list(p) for p in opts.inherit_fds]} if opts.inherit_fds else {}),
        }

    def _request(self, opts: CriuOptions, call: CriuCall, pid: int | None) -> Any:
        pycriu = self.pycriu
        # pycriu would fork swrk itself, but in the harness's session (so a Ctrl-C would kill
        # CRIU mid-dump) and without telling how it ended. Starting swrk here keeps both.
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        inherit = [fd for _, fd in opts.inherit_fds]
        if config := rpc_config_args(opts):
            conf = "\n".join(config_lines(config)) + "\n"
            (opts.images_dir / RPC_CONFIG).write_text(conf)
        dirfd = os.open(opts.images_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with (opts.images_dir / f"{call.action}.out").open("wb") as out:
                proc = subprocess.Popen(
                    [self.criu.path, "swrk", str(theirs.fileno())],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    pass_fds=[theirs.fileno(), *inherit],
                )
            theirs.close()
            errno = None
            resp = None
            try:
                c = pycriu.criu()
                c.use_fd(ours.fileno())
                c.opts.images_dir_fd = dirfd
                for name, value in rpc_fields(call.action, opts, pid).items():
                    setattr(c.opts, name, value)
                for key, fd in opts.inherit_fds:
                    c.opts.inherit_fd.add(key=key, fd=fd)
                resp = c.dump() if call.action == "dump" else c.restore()
            except pycriu.CRIUExceptionExternal as exc:
                errno = exc.errno
            except pycriu.CRIUException:
                errno = None  # the swrk connection broke: its exit status says why
            finally:
                # Closing our end ends swrk's request loop.
                ours.close()
                rc = wait_criu(proc)
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
