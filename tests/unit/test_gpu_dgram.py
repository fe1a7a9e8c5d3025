"""The GPU echo pair on real processes, its state in host memory (``--state host``): every
reply carries the counter, and a counter that starts over is a client error naming it."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.supervisor import Supervisor
from harness.verification import Accounting, read_events
from harness.waiting import wait_for
from harness.workloads.continuity import counter_breaks

MODULE = [sys.executable, "-m", "harness.workloads.gpu_dgram"]


def received(events: Path) -> int:
    return sum(1 for e in read_events(events) if e.get("event") == "received")


def test_a_server_that_starts_over_breaks_the_counter(tmp_path: Path) -> None:
    server_sock, events = str(tmp_path / "s.sock"), tmp_path / "client.events"
    server = [*MODULE, "server", "--socket", server_sock, "--state", "host", "--gpu-mb", "2"]
    with Supervisor() as sup:
        first = sup.spawn("first", server, tmp_path)
        wait_for(lambda: Path(server_sock).exists(), timeout=10)
        sup.spawn("client", [*MODULE, "client", "--socket", str(tmp_path / "c.sock"),
                             "--server", server_sock, "--events", str(events),
                             "--timeout", "0.2"], tmp_path)
        wait_for(lambda: received(events), lambda n: n >= 10, timeout=10)
        assert counter_breaks(read_events(events)) == []
        # A new server on the same path: as if a restore had lost the device memory.
        first.kill()
        sup.spawn("second", server, tmp_path)
        before = received(events)
        wait_for(lambda: received(events), lambda n: n >= before + 10, timeout=10)
    log = read_events(events)
    assert all(isinstance(e.get("counter"), int) for e in log if e["event"] == "received")
    [reset] = counter_breaks(log)
    assert reset.kind == "reset" and reset.counter == 1
    errors = [e["error"] for e in log if e["event"] == "error"]
    assert str(reset) in errors
    assert Accounting.from_events(log).client_errors == len(errors)
