"""Decoding CRIU images into a summary, on hand-made entries (the shapes pycriu returns)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.images import (
    VMA_AREA_HEAP,
    VMA_AREA_VDSO,
    VMA_FILE_PRIVATE,
    ImageError,
    describe_file,
    describe_vma,
    image_sets,
    load_image,
    prot_string,
    summarize,
)

REG = {"type": "REG", "id": 1, "reg": {"id": 1, "name": "/usr/bin/python3", "flags": 0, "pos": 0}}
LOG = {"type": "REG", "id": 3, "reg": {"id": 3, "name": "tmp/x/app.log", "flags": 0, "pos": 90}}
USK = {
    "type": "UNIXSK",
    "id": 2,
    "usk": {"id": 2, "ino": 77, "type": 2, "state": 7, "peer": 0, "name": "/tmp/x/server.sock=00"},
}
FILES = {1: REG, 2: USK, 3: LOG}


def test_prot_string() -> None:
    assert prot_string(5, 2) == "r-xp"
    assert prot_string(3, 1) == "rw-s"
    assert prot_string(0, 2) == "---p"


def test_describe_file() -> None:
    assert describe_file(REG)[0] == "/usr/bin/python3"
    assert describe_file(LOG) == ("/tmp/x/app.log", {"flags": 0, "pos": 90})
    path, detail = describe_file(USK)
    assert path == "/tmp/x/server.sock"  # quoted-printable, trailing NUL dropped
    assert detail["type"] == "dgram"
    assert describe_file({"type": "UNIXSK", "id": 4, "usk": {"name": "=00abstract"}})[0] == "@abstract"
    assert describe_file({"type": "EVENTFD", "id": 5}) == (None, {})


def test_describe_vma() -> None:
    base = {"start": 0x1000, "end": 0x3000, "prot": 5, "flags": 2, "shmid": 1}
    m = describe_vma({**base, "status": VMA_FILE_PRIVATE | 1}, FILES)
    assert (m.start, m.end, m.prot, m.path) == ("1000", "3000", "r-xp", "/usr/bin/python3")
    assert describe_vma({**base, "status": VMA_AREA_HEAP | 1}, FILES).path == "[heap]"
    assert describe_vma({**base, "status": VMA_AREA_VDSO | 1}, FILES).path == "[vdso]"
    assert describe_vma({**base, "status": 0x201}, FILES, stack=0x2000).path == "[stack]"
    assert describe_vma({**base, "status": 0x201}, FILES).path is None  # plain anonymous


def _loader(images: dict[str, list[dict[str, Any]]]) -> Any:
    def load(path: Path) -> dict[str, Any]:
        if path.name not in images:
            raise ImageError(path, "truncated")
        return {"entries": images[path.name]}

    return load


def test_summarize_builds_the_tree(tmp_path: Path) -> None:
    images = tmp_path / "images" / "reader"
    images.mkdir(parents=True)
    decoded: dict[str, list[dict[str, Any]]] = {
        "pstree.img": [{"pid": 42, "ppid": 0, "pgid": 42, "sid": 42, "threads": [42]}],
        "files.img": [REG, USK, LOG],
        "core-42.img": [{"tc": {"comm": "python3"}}],
        "ids-42.img": [{"files_id": 2}],
        "fdinfo-2.img": [{"id": 3, "fd": 3, "type": "REG"}, {"id": 2, "fd": 4, "type": "UNIXSK"}],
        "mm-42.img": [{"mm_start_stack": 0x8800, "vmas": [
            {"start": 0x1000, "end": 0x2000, "prot": 1, "flags": 2, "status": 0x41, "shmid": 1},
            {"start": 0x8000, "end": 0x9000, "prot": 3, "flags": 0x122, "status": 0x201, "shmid": 0},
        ]}],
    }
    for name in [*decoded, "inventory.img", "pages-1.img"]:
        (images / name).write_bytes(b"")
    summary = summarize(images, tmp_path, _loader(decoded))
    assert summary.images == "images/reader" and summary.complete and summary.problems == []
    [proc] = summary.processes
    assert (proc.pid, proc.comm, proc.threads) == (42, "python3", [42])
    assert [(f.fd, f.kind, f.path) for f in proc.fds] == [
        (3, "REG", "/tmp/x/app.log"),
        (4, "UNIXSK", "/tmp/x/server.sock"),
    ]
    assert [(m.prot, m.path) for m in proc.maps] == [("r--p", "/usr/bin/python3"), ("rw-p", "[stack]")]
    assert image_sets(tmp_path) == [images]


def test_summarize_lists_what_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "inventory.img").write_bytes(b"")
    (tmp_path / "pstree.img").write_bytes(b"")
    (tmp_path / "core-7.img").write_bytes(b"")
    decoded = {"pstree.img": [{"pid": 7, "threads": [7]}]}
    summary = summarize(tmp_path, tmp_path, _loader(decoded))
    assert [p.pid for p in summary.processes] == [7]
    assert "files.img: missing" in summary.problems
    assert "core-7.img: cannot decode: truncated" in summary.problems


def test_incomplete_dump(tmp_path: Path) -> None:
    summary = summarize(tmp_path, tmp_path, _loader({}))
    assert not summary.complete and "did not complete" in summary.problems[0]


def test_an_image_that_cannot_be_read_is_an_image_error_naming_it(tmp_path: Path) -> None:
    pytest.importorskip("pycriu.images")
    torn = tmp_path / "pstree.img"
    torn.write_bytes(b"\x00\x01")
    for path in (torn, tmp_path / "missing.img"):
        with pytest.raises(ImageError, match=f"cannot read CRIU image {path}: ") as caught:
            load_image(path)
        assert caught.value.path == path
    with pytest.raises(ImageError, match="page data is never decoded"):
        load_image(tmp_path / "pages-1.img")
