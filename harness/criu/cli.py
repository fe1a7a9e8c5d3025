"""The ``cli`` backend: the ``criu`` binary, run through an argv list."""

from __future__ import annotations

from harness.criu.backend import Backend, CriuCall
from harness.criu.options import PIDFILE, Action, CriuOptions, cli_args
from harness.criu.process import CriuProcess, env_record
from harness.errors import CriuError
from harness.fields import JsonObject


class CliBackend(Backend):
    name = "cli"

    def describe(self, action: Action, opts: CriuOptions, pid: int | None) -> JsonObject:
        return {"argv": [self.criu.path, *cli_args(action, opts, pid)], **env_record(opts)}

    def _run(self, opts: CriuOptions, call: CriuCall) -> None:
        argv = call.options["argv"]
        with (opts.images_dir / f"{call.action}.out").open("wb") as out:
            criu = CriuProcess(argv, out, opts, pass_fds=opts.pass_fds(),
                               cgroup=opts.cgroup if call.action == "restore" else None)
            rc = criu.wait()
        if criu.timed_out:
            raise self._failure(call, timed_out=criu.timeout)
        if rc != 0:
            raise self._failure(call, returncode=rc)

    def _dump(self, pid: int, opts: CriuOptions, call: CriuCall) -> None:
        self._run(opts, call)

    def _restore(self, opts: CriuOptions, call: CriuCall) -> int:
        self._run(opts, call)
        try:
            return int((opts.images_dir / PIDFILE).read_text().strip())
        except (OSError, ValueError) as exc:
            err = CriuError(
                action="restore",
                pid=None,
                log_path=call.log_path,
                signature=f"restored, but no pid in {PIDFILE}: {exc}",
                returncode=0,
                call=call,
            )
            call.error = str(err)
            raise err from exc
