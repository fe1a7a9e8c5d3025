"""What both CRIU backends share, without CRIU: the binary check, the deadline of a CRIU
process, CRIU's environment, and the error of a CRIU that was killed."""

from __future__ import annotations


import pytest

from harness.criu.rpc import rpc_config
from harness.errors import UsageError


def test_extra_args_rpc_cannot_pass_are_a_usage_error() -> None:
    assert rpc_config(("--file-locks", "--ghost-limit", "1M")) == "file-locks\nghost-limit 1M\n"
    with pytest.raises(UsageError, match="extra_args.*'-v'"):
        rpc_config(("-v",))
