"""Ctrl-C at the very start of `criu-harness run`: one line and exit status 130, never a
traceback of the harness, and nothing left running."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.criu


_FRAME = re.compile(r'File "(?P<path>[^"]+)", line \d+, in (?P<func>\S+)')


def before_main(traceback: str) -> bool:
    """The traceback shows CPython still starting: no frame of the harness but the package's
    own import on the way to main (the console script's `from harness.__main__ import main`)."""
    for m in _FRAME.finditer(traceback):
        path, func = m.group("path"), m.group("func")
        if "/harness/" in path and not (
            func == "<module>" and Path(path).name in ("__init__.py", "__main__.py")
        ):
            return False
    return True


def test_ctrl_c_in_the_first_moments_is_one_line_and_exit_130(tmp_path: Path) -> None:
    """From the first line of the console script's main, a Ctrl-C ends the command with one
    line and exit status 130: during the imports (a tenth of a second), the parsing and the
    start of the run. Before main, CPython itself is still starting (`site`): it may print
    its own traceback there, which no frame of the harness is part of."""
    script = Path(sys.executable).with_name("criu-harness")
    clean = 0
    for i in range(21):
        proc = subprocess.Popen([str(script), "run", "dgram-echo"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, start_new_session=True,
                                env={**os.environ, "TMPDIR": str(tmp_path)})
        time.sleep(i * 0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        if "Traceback" in err:
            assert before_main(err), (i, err)
            continue
        if proc.returncode == -signal.SIGINT:  # before CPython's own handler: no output
            assert err == ""
            continue
        assert proc.returncode == 130, (i, proc.returncode, err)
        assert len(err.strip().splitlines()) == 1 and "interrupted" in err, err
        clean += 1
    assert clean >= 15  # all but the first few hundredths of a second
    assert not [p for p in psutil.process_iter(["cmdline"])
                if str(tmp_path) in " ".join(p.info["cmdline"] or [])
                and p.info["cmdline"] and "harness.workloads" in " ".join(p.info["cmdline"])]
