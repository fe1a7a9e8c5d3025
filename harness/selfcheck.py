"""Asking a program that checks itself: many test programs run until a signal, then verify their
own state and say PASS or FAIL by their exit status or in a file. After the last migration the
harness sends the scenario's ``[verify] signal`` to every workload, waits for each to exit, and
judges what it said."""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from pathlib import Path

from harness.errors import WorkloadError
from harness.process import Workload
from harness.scenario import Verify

__all__ = ["ask"]


def ask(verify: Verify, workloads: dict[str, Workload], render: Callable[[str], str]) -> list[str]:
    """Signal every workload, wait for it to exit, and return what is wrong (nothing: PASS)."""
    assert verify.signal is not None
    sig = signal.Signals[verify.signal]
    problems: list[str] = []
    for name, workload in workloads.items():
        if not workload.alive():
            problems.append(f"{name} was not running when it was to be asked ({sig.name})")
            continue
        workload.signal_main(sig)  # a daemon in a namespace: the daemon, not its init
        try:
            status = workload.reap(timeout=verify.deadline)
        except WorkloadError:
            problems.append(f"{name} did not exit within {verify.deadline:g} s of {sig.name}")
            continue
        if verify.exit_status is not None and status != verify.exit_status:
            problems.append(f"{name} exited with status {status} (expected {verify.exit_status})"
                            + (f": {workload.tail(2)}" if workload.tail(2) else ""))
    if verify.file is not None:
        problems += _judge_file(Path(render(verify.file)), verify.pattern or "")
    return problems


def _judge_file(path: Path, pattern: str) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return [f"{path}: no verdict written ({exc.strerror})"]
    if re.search(pattern, text, re.MULTILINE):
        return []
    said = " | ".join(text.strip().splitlines()[:3]) or "(empty)"
    return [f"{path} does not say {pattern!r}: {said}"]
