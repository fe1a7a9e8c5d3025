"""The conversation between two hosts (harness.wire) and what the receiver accepts of it:
framing over a real socket pair, files packed and unpacked only below the run directory, a
hello refused with its reason, addresses parsed."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import pytest

from harness.departure import PROTOCOL, Arrival, Destination
from harness.door import GRACE_S, Door
from harness.errors import RemoteError, UsageError
from harness.fingerprint import Fd, Fingerprint, take_tree
from harness.outcome import Step
from harness.plan import get_plan
from harness.receiver import Receiver
from harness.result import Phase
from harness.rundir import MARKER, PREFIX, RunDir
from harness.wire import DEFAULT_PORT, Channel, pack, parse_address, unpack


def channels() -> tuple[Channel, Channel]:
    """Two ends of one connection, each named by the peer it talks to."""
    a, b = socket.socketpair()
    return Channel(a, "peer b"), Channel(b, "peer a")


def test_a_message_and_its_payload_arrive_whole() -> None:
    a, b = channels()
    payload = os.urandom(3 << 20)  # more than one recv
    sender = threading.Thread(target=a.send, args=({"op": "x", "n": 1}, payload))
    sender.start()
    message, data = b.receive()
    sender.join()
    assert message == {"op": "x", "n": 1} and data == payload


def test_a_refusal_is_raised_with_the_other_sides_words() -> None:
    a, b = channels()
    b.refuse("no such scenario file")  # queued for a before it even asks
    with pytest.raises(RemoteError, match="^peer b: no such scenario file$"):
        a.ask({"op": "serve"})
    assert b.receive() == ({"op": "serve"}, b"")


def test_a_peer_that_goes_away_or_speaks_another_language_is_a_remote_error() -> None:
    a, b = channels()
    b.sk.sendall(b"\x00\x00\x00\x05hello")
    with pytest.raises(RemoteError, match="not a message of the harness"):
        a.receive()
    b.close()
    with pytest.raises(RemoteError, match="closed the connection"):
        a.receive()


def test_pack_takes_plain_files_and_directories_and_unpack_puts_them_below_the_target(
    tmp_path: Path,
) -> None:
    src = tmp_path / "src"
    (src / "images" / "server").mkdir(parents=True)
    (src / "images" / "server" / "core-1.img").write_bytes(b"core")
    (src / "client.events").write_text("{}\n")
    (src / "link").symlink_to("/etc/passwd")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(src / "server.sock"))
    data = pack(src, sorted(src.iterdir()))
    dst = tmp_path / "dst"
    dst.mkdir()
    names = unpack(data, dst)
    sock.close()
    assert sorted(names) == ["client.events", "images", "images/server",
                             "images/server/core-1.img"]
    assert (dst / "images" / "server" / "core-1.img").read_bytes() == b"core"
    assert not (dst / "link").exists() and not (dst / "server.sock").exists()


@pytest.mark.parametrize("name", ["/etc/cron.d/x", "../escape", "a/../../escape"])
def test_unpack_refuses_a_name_outside_the_target(tmp_path: Path, name: str) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(RemoteError, match="refused to unpack"):
        unpack(out.getvalue(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unpack_refuses_links(tmp_path: Path) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("passwd")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(RemoteError, match="'passwd'"):
        unpack(out.getvalue(), tmp_path)


@pytest.mark.parametrize(("text", "expected"), [
    ("192.168.56.11", ("192.168.56.11", DEFAULT_PORT)),
    ("dst:4000", ("dst", 4000)),
])
def test_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(("text", "why"), [
    (":4000", "expected HOST or HOST:PORT"), ("dst:0", "out of range"), ("dst:ab", "not a number")])
def test_bad_addresses(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_address(text)
    with pytest.raises(UsageError, match=why):
        Destination.parse(text)


def test_a_run_directory_is_claimed_only_new_and_in_the_temp_directory() -> None:
    base = Path(tempfile.gettempdir())
    path = base / f"{PREFIX}claimed-{os.getpid()}"
    run = RunDir.claim(path)
    try:
        assert (path / MARKER).is_file() and (path.stat().st_mode & 0o777) == 0o700
        with pytest.raises(UsageError, match="already exists on this host .*a file system of its own"):
            RunDir.claim(path)
    finally:
        run.remove()
    for bad in (Path("/etc") / f"{PREFIX}x", base / "not-the-harness", base / "a" / f"{PREFIX}x"):
        with pytest.raises(UsageError, match="not one of the harness's"):
            RunDir.claim(bad)
        assert not bad.exists()


def test_a_fingerprint_crosses_as_json() -> None:
    made = Fingerprint(7, ("python3", "-u"), "/tmp", "T",
                       {0: Fd("file", "/dev/null", "0100000", 0), 3: Fd("socket", "unix dgram")},
                       {("[heap]", "rw-p"): 4096}, {"nofile": (1024, 4096)})
    assert Fingerprint.from_json(made.to_json()) == made
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        [taken] = take_tree(sleeper.pid).values()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert taken.fds and taken.maps and taken.rlimits
    assert Fingerprint.from_json(taken.to_json()) == taken


def test_the_plans_halves_keep_its_order() -> None:
    plan = get_plan("server-first").for_roles(["server", "client"])
    leaving, arriving = plan.departing(), plan.arriving()
    assert (leaving.freeze, leaving.dump, leaving.restore) == (plan.freeze, plan.dump, ())
    assert (arriving.freeze, arriving.dump, arriving.restore) == ((), (), plan.restore)


@pytest.mark.parametrize(("hello", "why"), [
    ({"op": "hello", "protocol": PROTOCOL + 1},
     f"this receiver {PROTOCOL}: run the same harness"),
    ({"op": "hello", "protocol": PROTOCOL, "scenario": "dgram-echo", "sha256": "0"},
     "scenario dgram-echo: not the same file on both hosts"),
    ({"op": "serve"}, "expected a hello"),
])
def test_a_receiver_refuses_a_bad_hello_with_the_reason(hello: dict[str, object], why: str) -> None:
    lines: list[str] = []
    receiver = Receiver("127.0.0.1", 0, say=lines.append)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    receiver.port = port
    done: list[int] = []
    thread = threading.Thread(target=lambda: done.append(receiver.serve(once=True)))
    thread.start()
    try:
        for _ in range(100):
            if lines:
                break
            threading.Event().wait(0.02)
        channel = Channel(socket.create_connection(("127.0.0.1", port)), "receiver")
        with pytest.raises(RemoteError, match=why):
            channel.ask(hello, timeout=10)
        channel.close()
    finally:
        thread.join(timeout=10)
    assert done == [1] and any(why in line for line in lines), lines


def test_what_the_source_did_goes_over_and_is_read_back_or_refused() -> None:
    """Arrival: the phases and the looks before the dumps, as the receiver reads them back
    (the pids of the looks come back as numbers); a message without them is one line."""
    phases = [Phase(Step.FREEZE, "server", 1.0, 1.5), Phase(Step.DUMP, "server", 1.5, 2.0, ok=False)]
    look = Fingerprint(pid=42, cmdline=("server",), cwd="/", state="T",
                       fds={0: Fd("file", "/dev/null", "0100000", 0)},
                       maps={("[heap]", "rw-p"): 4096}, rlimits={"nofile": (1024, 4096)})
    sent = Arrival(started=1.0, phases=phases, calls=[], before={"server": {42: look}})
    back = Arrival.from_json(json.loads(json.dumps(sent.to_json())))
    assert back == sent
    assert Arrival.from_json({"started": 2, "phases": [], "calls": [], "before": None}).before is None
    with pytest.raises(UsageError, match="an arrival the harness cannot read: 'phases'"):
        Arrival.from_json({"started": 2})
    with pytest.raises(UsageError, match="an arrival the harness cannot read"):
        Arrival.from_json({"started": "soon", "phases": [], "calls": []})


def test_the_door_takes_one_run_at_a_time_and_the_next_once_it_ends() -> None:
    """A source that comes while a run is on waits a little at the door (its next scenario
    comes as soon as the last one's verdict is out), then is refused with whose run it is."""
    said: list[str] = []
    with Door("127.0.0.1", 0, said.append) as door:
        port = door.listener.getsockname()[1]

        def connect() -> Channel:
            return Channel(socket.create_connection(("127.0.0.1", port)), "receiver")

        first = connect()
        sk, peer = door.next()
        assert peer == "127.0.0.1"
        started = time.monotonic()
        with pytest.raises(RemoteError, match=r"busy with a run from 127\.0\.0\.1 \(one run at a time\)"):
            connect().ask({"op": "hello"}, timeout=10)
        assert GRACE_S <= time.monotonic() - started < GRACE_S + 2
        assert said == ["turned away 127.0.0.1: busy with a run from 127.0.0.1 (one run at a time)"]
        # The next source, while the run ends: let in as soon as it has.
        second = connect()
        threading.Timer(0.3, door.done).start()
        nxt, _ = door.next()
        for s in (sk, nxt):
            s.close()
        first.close()
        second.close()
