"""The atlas drawn from results (no CRIU here): each kind of cell, the table, the page, the
JSON; and `compare` of two atlas nights where one cell changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import cli
from harness.atlas import atlas_of
from harness.behaviour import CRIU_UNUSABLE, describe, kind
from harness.criu.backend import CriuCall
from harness.report import RunReport
from harness.result import CycleResult, Outcome, ScenarioResult


def _call(action: str, error: str | None = None) -> CriuCall:
    return CriuCall(action="dump" if action == "dump" else "restore", backend="cli", pid=7,
                    options={}, criu_options={}, log_path=Path("/x/dump.log"), started=1.0,
                    error=error)


def result(name: str, mechanism: str, version: str, outcome: Outcome, expected: str = "migrates",
           criu_error: str | None = None, failed: str | None = None, reason: str = "",
           lost: int = 0, plan: str = "server-first") -> ScenarioResult:
    calls = [_call("dump", "criu dump failed" if failed == "dump" else None)]
    if failed == "restore":
        calls.append(_call("restore", "criu restore failed"))
    return ScenarioResult(
        name=name, expected=expected, outcome=outcome, backend="cli", plan=plan,
        mechanism=mechanism, criu_version=version, criu_error=criu_error, reason=reason,
        messages_lost=lost, downtime_ms=200.0 if outcome is Outcome.PASSED else None,
        cycles=[CycleResult(cycle=1, outcome=outcome, calls=calls)])


def night(tcp_41: ScenarioResult | None = None) -> RunReport:
    run = RunReport(criu_version="4.2.1, 4.1.1", backend="atlas", started=1795800000.0)
    for v in ("4.2.1", "4.1.1"):
        run.scenarios += [
            result("unix-seqpacket", "unix-seqpacket", v, Outcome.XFAILED, "fails",
                   "Error (criu/sk-unix.c:881): unix: Can't dump half of stream unix connection."
                   " name: /tmp/criu-harness-unix-seqpacket-abcd1234/server.sock", failed="dump"),
            result("pipe-two-trees", "pipe-two-trees", v, Outcome.XFAILED, "breaks",
                   reason="migrated, but the IPC did not come back, as expected: client: "
                          "send: [Errno 32] Broken pipe"),
            result("scm-rights", "scm-rights", v, Outcome.XFAILED, "fails",
                   "Error (criu/sk-queue.c:311): skqueue: Failed to send packet", failed="restore"),
            result("inet-udp", "inet-udp", v, Outcome.PASSED, lost=1),
        ]
    run.scenarios.append(result("inet-tcp", "inet-tcp", "4.2.1", Outcome.PASSED))
    run.scenarios.append(tcp_41 or result(
        "inet-tcp", "inet-tcp", "4.1.1", Outcome.XFAILED, "fails",
        "Error (criu/sockets.c:628): sockets: Can't get 1:16 opt: Operation not supported",
        failed="dump"))
    run.scenarios.append(result("dgram-echo", "unix-dgram", "3.17.1", Outcome.SKIPPED,
                                reason=f"{CRIU_UNUSABLE}vdso: Unexpected rt vDSO area bounds"))
    run.scenarios.append(ScenarioResult(name="native-dgram", expected="migrates",
                                        outcome=Outcome.PASSED, criu_version="4.2.1"))
    return run


def test_kinds() -> None:
    by_name = {(r.name, r.criu_version): r for r in night().scenarios}
    assert kind(by_name[("unix-seqpacket", "4.2.1")]) == "refused at dump"
    assert kind(by_name[("pipe-two-trees", "4.2.1")]) == "breaks"
    assert kind(by_name[("scm-rights", "4.1.1")]) == "fails at restore"
    assert describe(by_name[("inet-udp", "4.2.1")]) == "migrates (1 lost)"
    assert kind(by_name[("dgram-echo", "3.17.1")]) == "criu unusable"


def test_the_atlas_of_a_run() -> None:
    atlas = atlas_of(night())
    assert atlas.versions == ["4.2.1", "4.1.1", "3.17.1"]
    assert ("native-dgram", "server-first") not in atlas.rows()  # no mechanism: not a cell
    tcp = atlas.cell("inet-tcp", "server-first", "4.1.1")
    assert tcp is not None and tcp.kind == "refused at dump"
    assert tcp.signature == "sockets: Can't get 1:16 opt: Operation not supported"
    seq = atlas.cell("unix-seqpacket", "server-first", "4.2.1")
    assert seq is not None and seq.signature is not None and "<run_dir>/server.sock" in seq.signature
    pipe = atlas.cell("pipe-two-trees", "server-first", "4.1.1")
    assert pipe is not None and pipe.signature == "send: [Errno 32] Broken pipe"
    lines = atlas.table()
    assert any(line.startswith("inet-tcp") and "4.1.1" in line and "refused at dump" in line
               for line in lines)
    page = atlas.markdown()
    assert "| inet-tcp | server-first | migrates, 200 ms | refused at dump |" in page
    assert "| unix-dgram | server-first |  |  | criu unusable |" in page
    assert "<table class='atlas'>" in atlas.html() and 'class="bad"' in atlas.html()
    data = json.loads(json.dumps(atlas.to_json()))
    assert {c["mechanism"] for c in data["cells"]} >= {"inet-tcp", "scm-rights", "unix-dgram"}


def test_atlas_from_a_results_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    night().write(tmp_path / "results.json")
    page = tmp_path / "atlas.md"
    assert cli.main(["atlas", "--from", str(tmp_path / "results.json"), "--markdown", str(page)]) == 0
    out = capsys.readouterr().out
    assert "inet-tcp" in out and "refused at dump" in out
    assert page.read_text().startswith("# The migration atlas")


def test_compare_two_atlas_nights_where_one_cell_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CRIU 4.1.1 learned to dump TCP: the one cell that changed is one regression line."""
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    night().write(old)
    night(tcp_41=result("inet-tcp", "inet-tcp", "4.1.1", Outcome.XPASSED, "fails")).write(new)
    assert cli.main(["compare", str(old), str(new), "--threshold", "100"]) == 1
    lines = capsys.readouterr().out.splitlines()
    changed = [line for line in lines if line.startswith("atlas cell changed")]
    assert changed == [
        "atlas cell changed: inet-tcp [server-first, criu 4.1.1, cli]: "
        "refused at dump -> xpassed (xfailed -> xpassed)"
    ]
    assert lines[-1].startswith("1 regression(s)")


def test_an_alternative_is_no_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """scm-rights may fail at restore one night and migrate the next ([expect.or])."""
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    night().write(old)
    run = night()
    run.scenarios = [s for s in run.scenarios if (s.name, s.criu_version) != ("scm-rights", "4.2.1")]
    run.scenarios.append(result("scm-rights", "scm-rights", "4.2.1", Outcome.PASSED, "fails", lost=3))
    run.write(new)
    assert cli.main(["compare", str(old), str(new), "--threshold", "100"]) == 0
    assert "outcome changed: scm-rights [cli, criu 4.2.1, server-first]" in capsys.readouterr().out


def test_the_nightly_report_has_an_atlas_section() -> None:
    from harness import html

    page = html.render(night())
    assert "<h2>Atlas</h2>" in page and "<table class='atlas'>" in page
    assert "table.atlas .good" in page  # the cells' colours come along
    plain = RunReport("4.2.1", "matrix", scenarios=[ScenarioResult("native-dgram", "migrates")])
    assert "<h2>Atlas</h2>" not in html.render(plain)
