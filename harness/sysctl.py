"""fs.pipe-max-size, raised for the runs that need it and put back after the last one.

CRIU's lazy dump sizes its page pipe with F_SETPIPE_SZ to a few MiB; above
/proc/sys/fs/pipe-max-size (1 MiB by default) that needs CAP_SYS_RESOURCE, which root lacks on
these machines, and CRIU does not check the failure: the dump fails later with
``page-pipe: tee: 65536: Operation not permitted`` and ``Lazy pages transfer FAILED``, whose
errno is stale. Root may write the sysctl, so the harness raises it for the run, says so, and
puts the old value back.

Runs overlap (``run -j``, ``pytest -n``, other harnesses on the machine), so the value is
raised by the first holder and put back by the last: the holders and the value found are kept
in a state file, under a lock. A holder whose process is gone (a harness killed outright) no
longer counts, and the next run puts back what it left raised; the value is put back only if
nobody changed it meanwhile.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["LAZY_PIPE_MAX_SIZE", "PIPE_MAX_SIZE", "raised_pipe_max_size"]

PIPE_MAX_SIZE = Path("/proc/sys/fs/pipe-max-size")
# Enough for CRIU's lazy page pipe (measured: a 1 GiB process migrated lazily with 8 MiB).
LAZY_PIPE_MAX_SIZE = 8 * 2**20
STATE = Path("/run/criu-harness/pipe-max-size.json")


@contextmanager
def _locked(state: Path) -> Iterator[dict[str, object]]:
    state.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    with open(state.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data: dict[str, object] = json.loads(state.read_text()) if state.exists() else {}
        except (OSError, ValueError):
            data = {}
        yield data
        if data.get("holders"):
            state.write_text(json.dumps(data))
        else:
            state.unlink(missing_ok=True)


def _alive(holder: str) -> bool:
    pid = int(holder.split(":", 1)[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def raised_pipe_max_size(
    at_least: int = LAZY_PIPE_MAX_SIZE,
    say: Callable[[str], None] = print,
    sysctl: Path = PIPE_MAX_SIZE,
    state: Path = STATE,
) -> Iterator[int]:
    """fs.pipe-max-size at least at_least for the block; yields the value in force."""
    me = f"{os.getpid()}:{uuid.uuid4().hex[:8]}"
    with _locked(state) as data:
        holders = [h for h in data.get("holders", []) if _alive(h)]  # type: ignore[attr-defined]
        current = int(sysctl.read_text())
        if not holders and data.get("set") != current:
            # Nobody holds it and what was set is gone: what is found now is the machine's.
            data.pop("original", None)
            data.pop("set", None)
        if current < at_least:
            sysctl.write_text(str(at_least))
            data.setdefault("original", current)
            data["set"] = at_least
            say(f"fs.pipe-max-size raised from {current} to {at_least} for CRIU's lazy pages "
                "(root lacks CAP_SYS_RESOURCE here); it is put back after the run")
        data["holders"] = [*holders, me]
        value = max(current, at_least)
    try:
        yield value
    finally:
        with _locked(state) as data:
            holders = [h for h in data.get("holders", []) if h != me and _alive(h)]  # type: ignore[attr-defined]
            data["holders"] = holders
            original, ours = data.get("original"), data.get("set")
            if not holders and original is not None:
                if int(sysctl.read_text()) == ours:
                    sysctl.write_text(str(original))
                    say(f"fs.pipe-max-size put back to {original}")
                data.pop("original", None)
                data.pop("set", None)
