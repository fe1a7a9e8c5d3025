"""The ``rpc`` backend: CRIU's own Python bindings (pycriu) talking to ``criu swrk``."""

from __future__ import annotations

import os
import socket
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from functools import partial
from pathlib import Path
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
from harness.criu.process import CriuProcess, Starter, criu_cgroup, criu_env, env_record
from harness.errors import UsageError
from harness.fields import JsonObject
from harness.rundir import private_dir


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


def _started_as(action: Action, opts: CriuOptions) -> tuple[object, ...]:
    """What a ``criu swrk`` is started with, as opposed to what its request says: a swrk
    started ahead serves a request only if these are the same."""
    cgroup = opts.cgroup if action == "restore" else criu_cgroup()
    return (criu_env(opts).get("CRIU_FAULT"), cgroup, opts.timeout, tuple(opts.pass_fds()))


@dataclass
class _Swrk:
    """A ``criu swrk``, waiting for its request on ``sock``."""

    process: CriuProcess
    sock: socket.socket
    started_as: tuple[object, ...]

    def close(self) -> None:
        """Unused: it has touched nothing yet, so it is killed rather than waited for (a CRIU
        that hangs would otherwise hold the harness until its deadline), and collected."""
        self.sock.close()
        self.process.stop()


# How long a CRIU started ahead may take to start: past it, the request starts its own (a
# fork and exec take milliseconds; this only bounds a start that went wrong).
START_TIMEOUT_S = 10.0
def _started(ahead: Future[_Swrk]) -> _Swrk | None:
    """The swrk a future started, once it has; None if its start failed or is taking too
    long (START_TIMEOUT_S)."""
    try:
        if ahead.exception(START_TIMEOUT_S) is None:
            return ahead.result()
    except FutureTimeout:
        pass
    return None


class RpcBackend(Backend):
    name = "rpc"

    def __init__(
        self, binary: str | None = None, timeout: float | None = None, fault: int | None = None
    ) -> None:
        super().__init__(binary, timeout, fault)
        self.pycriu = _pycriu()
        # CRIU started ahead of its request, by (action, images directory): see warm().
        self._ahead: dict[tuple[Action, Path], Future[_Swrk]] = {}
        self._lock = threading.Lock()
        # The one thread that starts them (harness.criu.process.Starter), until cool().
        self._starter: Starter[_Swrk] | None = None

    def warm(self, action: Action, opts: CriuOptions, wait: bool = False) -> None:
        """Start ``criu swrk`` for an action now, so that its start (a fork of the harness,
        the exec, joining its cgroup: about 5-10 ms) is not part of the downtime when the
        request comes. The file descriptors the options pass (a page-server connection) are
        inherited now: the caller keeps them open until the request. ``wait``: return once
        it runs."""
        opts = self.effective(opts)
        with self._lock:
            self._discard((action, opts.images_dir))
            if self._starter is None:
                self._starter = Starter("criu-swrk")
            ahead = self._starter.submit(partial(self._spawn, action, opts))
            self._ahead[(action, opts.images_dir)] = ahead
        if wait:
            _started(ahead)

    def cool(self) -> None:
        """End every CRIU started ahead that no request used, and the thread that started
        them."""
        with self._lock:
            starter, self._starter = self._starter, None
            try:
                for key in list(self._ahead):
                    self._discard(key)
            finally:
                if starter is not None:
                    starter.stop()

    def _discard(self, key: tuple[Action, Path]) -> None:
        ahead = self._ahead.pop(key, None)
        swrk = _started(ahead) if ahead is not None else None
        if swrk is not None:
            swrk.close()

    def _take(self, action: Action, opts: CriuOptions) -> _Swrk | None:
        """The swrk started ahead for this request, if it was started as the request needs."""
        with self._lock:
            ahead = self._ahead.pop((action, opts.images_dir), None)
        swrk = _started(ahead) if ahead is not None else None
        if swrk is None:
            return None
        if swrk.started_as != _started_as(action, opts):
            swrk.close()
            return None
        return swrk

    def _spawn(self, action: Action, opts: CriuOptions) -> _Swrk:
        private_dir(opts.images_dir)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with (opts.images_dir / f"{action}.out").open("wb") as out:
                criu = CriuProcess(
                    [self.criu.path, "swrk", str(theirs.fileno())],
                    out,
                    opts,
                    pass_fds=[theirs.fileno(), *opts.pass_fds()],
                    cgroup=opts.cgroup if action == "restore" else None,
                )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return _Swrk(criu, ours, _started_as(action, opts))

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
        # here (or ahead, see warm) keeps all three, and gives it its environment (CRIU_FAULT).
        if config := rpc_config_args(opts):
            (opts.images_dir / RPC_CONFIG).write_text(rpc_config(config))
        dirfd = os.open(opts.images_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            swrk = self._take(call.action, opts) or self._spawn(call.action, opts)
        except BaseException:
            os.close(dirfd)
            raise
        criu, ours = swrk.process, swrk.sock
        criu.restart_deadline()
        try:
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
            ours.close()
            os.close(dirfd)

    def _dump(self, pid: int, opts: CriuOptions, call: CriuCall) -> None:
        self._request(opts, call, pid)

    def _restore(self, opts: CriuOptions, call: CriuCall) -> int:
        return int(self._request(opts, call, None).pid)
