"""What both CRIU backends share, without CRIU: the binary check, the deadline of a CRIU
process, CRIU's environment, and the error of a CRIU that was killed."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.criu.backend import CriuBinary
from harness.criu.rpc import rpc_config
from harness.errors import UsageError


def script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_a_binary_must_answer_version_as_criu(tmp_path: Path) -> None:
    fake = script(tmp_path / "criu", 'echo "Version: 4.2.1"; echo "GitID: v4.2.1"')
    criu = CriuBinary.find(str(fake))
    assert criu.version() == "4.2.1"
    for body, said in [("exit 1", "nothing"), ('echo "false (GNU coreutils) 9.1"', "coreutils"),
                       ('echo "criu unknown"', "criu unknown")]:
        with pytest.raises(UsageError, match=f"not CRIU: '--version' printed .*{said}.*Version: X.Y"):
            CriuBinary.find(str(script(tmp_path / "notcriu", body)))
    with pytest.raises(UsageError, match="/bin/false: not CRIU"):
        CriuBinary.find("/bin/false")
    (tmp_path / "noexec").write_text("")
    with pytest.raises(UsageError, match="not found"):  # which() wants an executable
        CriuBinary.find(str(tmp_path / "noexec"))


def test_extra_args_rpc_cannot_pass_are_a_usage_error() -> None:
    assert rpc_config(("--file-locks", "--ghost-limit", "1M")) == "file-locks\nghost-limit 1M\n"
    with pytest.raises(UsageError, match="extra_args.*'-v'"):
        rpc_config(("-v",))
