"""Every atlas workload pair talks, without CRIU: started as its scenario file starts it, the
client sends a few messages (--count) and each one is answered, by the same accounting the
migrations use. A workload bug shows here in seconds, not as a failed migration."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from harness import scenario
from harness.verification import Accounting, read_events
from harness.workloads import shm

COUNT = 5
ATLAS = sorted(p for p in scenario.builtin_paths() if p.parent.name == "atlas")


def _ready(spec: scenario.ProcessSpec, s: scenario.Scenario, run_dir: Path) -> bool:
    """The scenario's own readiness probe (harness.readiness), on this run directory."""
    return spec.ready.probe(lambda text: s.render(text, run_dir), 0.0)


@pytest.mark.parametrize("path", ATLAS, ids=[p.stem for p in ATLAS])
def test_the_pair_answers_every_message(path: Path, tmp_path: Path) -> None:
    s = scenario.load(path)
    run_dir = tmp_path / s.name[:20]  # unix socket paths must stay short
    run_dir.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i, spec in enumerate(s.processes):
            argv = [s.render(a, run_dir) for a in spec.argv]
            if i == len(s.processes) - 1:
                argv += ["--count", str(COUNT)]  # the client, or the tree holding it
            with (run_dir / f"{spec.role}.stdout").open("wb") as out:
                procs.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                              cwd=run_dir, start_new_session=True))
            deadline = time.monotonic() + 10
            while not _ready(spec, s, run_dir):
                assert procs[-1].poll() is None, (run_dir / f"{spec.role}.stdout").read_text()
                assert time.monotonic() < deadline, f"{spec.role} not ready"
                time.sleep(0.02)
        events = Path(s.render(s.verify.events or "", run_dir))
        deadline = time.monotonic() + 15
        while Accounting.from_events(read_events(events)).answered < COUNT:
            assert time.monotonic() < deadline, events.read_text() if events.exists() else "no events"
            time.sleep(0.05)
        acc = Accounting.from_events(read_events(events))
        assert (acc.sent, acc.answered, acc.messages_lost, acc.client_errors) == (COUNT, COUNT, 0, 0)
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
            proc.wait()
        if s.name in ("sysv-shm", "posix-shm", "posix-shm-link-remap"):
            shm.remove_published("sysv" if s.name == "sysv-shm" else "posix", str(run_dir))
