"""The ``migration`` fixture's keyword arguments as the keys of a scenario's tables, and the
problems found in them as one UsageError that names each argument (``ready_socket``, where a
scenario file says ``ready.socket``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.problems import Keys, Problems


def given(**keys: Any) -> dict[str, Any]:
    """The keyword arguments given (not None), as the keys of a scenario's table."""
    return {key: value for key, value in keys.items() if value is not None}


def logged(stdout: Path, **keys: Any) -> dict[str, Any]:
    """The keys given; a pattern without a log is looked for in the process's stdout."""
    found = given(**keys)
    if "pattern" in found:
        found.setdefault("log", str(stdout))
    return found


def problems(ready_log: bool = True, progress_log: bool = True) -> Problems:
    """Problems named by the argument that gave the key: ("ready", "socket") is ready_socket."""
    renames = {"progress_min_progress": "min_progress", "progress_deadline": "deadline",
               "ready_pidfile": "pidfile", "progress_signal": "self_check()"}
    for table, log_given in (("ready", ready_log), ("progress", progress_log)):
        if not log_given:  # the log is the process's stdout: the pattern names that kind
            renames[f"{table}_log"] = f"{table}_pattern"

    def argument(keys: Keys) -> str:
        head, *rest = [str(k) for k in keys] or [""]
        if head == "self_check" and rest:  # self_check()'s own arguments, by their names
            head, rest = rest[0], rest[1:]
        elif head in ("ready", "progress") and rest:
            head, rest = f"{head}_{rest[0]}", rest[1:]
        return renames.get(head, head) + "".join(f"[{k!r}]" for k in rest)

    return Problems(argument)


def check(call: str, problems: Problems) -> None:
    """Raise a UsageError naming each problem's argument, if there is any."""
    if problems.found:
        raise UsageError(f"{call}: " + "; ".join(
            f"{problems.naming(p.keys)}: {p.why}" for p in problems.found
        ))
