"""GPU migrations: whether CRIU's CUDA plugin can work here, and a trial to prove it.

CRIU checkpoints a CUDA process through its CUDA plugin (``cuda_plugin.so``, found by
``harness.criu.plugins``), which runs NVIDIA's ``cuda-checkpoint`` utility by that name from
CRIU's PATH to lock the process's CUDA work and move device memory to the host and back. The
plugin quietly disables itself when it lacks any piece (no GPU, no cuda-checkpoint, one too
old), and a dump then fails on the process's /dev/nvidia* files or, worse, loses the device
memory: so the ``cuda`` feature checks each piece, names the first one missing, and ends with a
real trial (a tiny GPU echo server dumped and restored, its counter going on).

The harness never downloads cuda-checkpoint: it is on PATH, or named with ``--cuda-checkpoint``
(or ``$CRIU_HARNESS_CUDA_CHECKPOINT``).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.criu import CriuOptions, get_backend
from harness.criu.plugins import PluginMissing, plugin_dir
from harness.errors import HarnessError, UsageError
from harness.supervisor import Supervisor
from harness.waiting import DeadlinePassed, wait_for
from harness.workloads.continuity import parse_reply
from harness.workloads.protocol import GREETING, frame, parse

__all__ = [
    "CUDA_CHECKPOINT",
    "ENV",
    "PLUGIN_NEEDS",
    "CudaCheck",
    "check",
    "find_cuda_checkpoint",
    "trial",
    "use_cuda_checkpoint",
]

CUDA_CHECKPOINT = "cuda-checkpoint"  # the name the plugin runs it by
ENV = "CRIU_HARNESS_CUDA_CHECKPOINT"
# The options of cuda-checkpoint that CRIU 4.2's plugin runs (plugins/cuda/cuda_plugin.c):
# --action came with driver r555; a cuda-checkpoint without it makes the plugin disable itself.
PLUGIN_NEEDS = ("--action", "--get-state", "--get-restore-tid")
# Where the plugin itself looks for GPUs (is_cuda_device_available in cuda_plugin.c).
NVIDIA_PROC = Path("/proc/driver/nvidia/gpus")
# In a dump log of a CUDA process that the plugin really checkpointed.
CHECKPOINTED = "Checkpointing CUDA devices"
TOOL_TIMEOUT_S = 30.0
TRIAL_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class CudaCheck:
    """Whether GPU migrations can run here; ``detail`` names the missing piece, or what was
    found when nothing is missing."""

    available: bool
    detail: str


def use_cuda_checkpoint(path: str | os.PathLike[str]) -> Path:
    """Make the cuda-checkpoint at path the one CRIU's plugin runs: its directory goes first on
    this process's PATH, which every CRIU the harness starts inherits."""
    tool = Path(path).absolute()
    if tool.name != CUDA_CHECKPOINT:
        raise UsageError(
            f"{path}: must be named {CUDA_CHECKPOINT} (CRIU's CUDA plugin runs it by that name)"
        )
    if not (tool.is_file() and os.access(tool, os.X_OK)):
        raise UsageError(f"{path}: no executable {CUDA_CHECKPOINT} there")
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    if not dirs or dirs[0] != str(tool.parent):
        os.environ["PATH"] = os.pathsep.join([str(tool.parent), *dirs])
    return tool


def find_cuda_checkpoint() -> str | None:
    """The cuda-checkpoint CRIU's plugin will run: ``$CRIU_HARNESS_CUDA_CHECKPOINT``, else the
    one on PATH; None when there is none."""
    if explicit := os.environ.get(ENV):
        use_cuda_checkpoint(explicit)
    return shutil.which(CUDA_CHECKPOINT)


def _tool(argv: list[str]) -> tuple[int, str]:
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=TOOL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return -1, str(exc)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def check(criu_binary: str, with_trial: bool = True) -> CudaCheck:
    """Each piece GPU migrations need, in order, down to a trial migration; the first one
    missing is the answer."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return CudaCheck(False, "no nvidia-smi on PATH: no NVIDIA GPU driver here")
    rc, out = _tool([smi, "--query-gpu=name,driver_version", "--format=csv,noheader"])
    if rc != 0:
        return CudaCheck(False, f"nvidia-smi failed: {_last_line(out) or f'exit status {rc}'}")
    gpus = [line.strip() for line in out.splitlines() if line.strip()]
    if not gpus:
        return CudaCheck(False, "nvidia-smi lists no GPU")
    if not NVIDIA_PROC.is_dir():
        return CudaCheck(False, f"no {NVIDIA_PROC}: CRIU's CUDA plugin would disable itself")
    try:
        tool = find_cuda_checkpoint()
    except UsageError as exc:
        return CudaCheck(False, str(exc))
    if tool is None:
        return CudaCheck(False, f"no {CUDA_CHECKPOINT} on PATH (NVIDIA's public cuda-checkpoint "
                                f"repository, bin/x86_64_Linux; or --cuda-checkpoint PATH)")
    _, usage = _tool([tool, "-h"])  # what the plugin runs to see what it supports
    version = m.group(1) if (m := re.search(r"Version ([0-9][0-9.]*[0-9])", usage)) else "?"
    lacking = [option for option in PLUGIN_NEEDS if option not in usage]
    if lacking:
        return CudaCheck(False, f"{tool} (version {version}) too old: no {', '.join(lacking)}; "
                                "CRIU's CUDA plugin needs them (driver r555 or later)")
    try:
        plugins = plugin_dir(["cuda"])
    except PluginMissing as exc:
        return CudaCheck(False, str(exc))
    found = f"{gpus[0]} (x{len(gpus)}); {CUDA_CHECKPOINT} {version}; plugin in {plugins}"
    if not with_trial:
        return CudaCheck(True, found)
    why = trial(criu_binary, plugins)
    if why is not None:
        return CudaCheck(False, f"trial migration failed: {why}")
    return CudaCheck(True, f"{found}; a trial migration kept the GPU counter")


def _ask(sock: socket.socket, server: str, seq: int) -> int:
    """One round trip with the trial server: the counter its reply carries."""
    sock.sendto(frame(seq, GREETING), server)
    rseq, text = parse(sock.recv(4096))
    carried = parse_reply(text)
    if rseq != seq or carried is None:
        raise HarnessError(f"unexpected reply to {seq}: {text!r}")
    counter, ballast = carried
    if ballast != "ok":
        raise HarnessError(f"ballast check failed after the restore: {ballast}")
    return counter


def trial(
    criu_binary: str, plugins: Path, state: str = "cuda", backend: str = "cli"
) -> str | None:
    """Dump and restore a tiny GPU echo server (1 MiB of device memory) with the CUDA plugin;
    None when its counter went on, else why not. A failed trial's directory is kept."""
    run_dir = Path(tempfile.mkdtemp(prefix="criu-harness-cuda-trial-"))
    try:
        why = _trial_in(run_dir, criu_binary, plugins, state, backend)
    except (HarnessError, OSError) as exc:
        why = str(exc)
    if why is None:
        shutil.rmtree(run_dir, ignore_errors=True)
        return None
    return f"{why} (kept: {run_dir})"


def _trial_in(
    run_dir: Path, criu_binary: str, plugins: Path, state: str, backend: str
) -> str | None:
    server = str(run_dir / "s.sock")
    argv = [sys.executable, "-m", "harness.workloads.gpu_dgram", "server", "--socket", server,
            "--gpu-mb", "1", "--state", state]
    with Supervisor() as sup, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        workload = sup.spawn("server", argv, run_dir)
        try:
            wait_for(lambda: os.path.exists(server) or not workload.alive(),
                     timeout=TRIAL_TIMEOUT_S)
        except DeadlinePassed:
            return f"the trial server was not ready within {TRIAL_TIMEOUT_S:g} s"
        if not workload.alive():
            return f"the trial server did not start: {workload.tail()}"
        sock.bind(str(run_dir / "c.sock"))
        sock.settimeout(TRIAL_TIMEOUT_S)
        before = _ask(sock, server, 1)
        images = run_dir / "images"
        images.mkdir()
        criu = get_backend(backend, criu_binary)
        criu.dump(workload.pid, CriuOptions(images, "dump.log", plugin_dir=plugins))
        workload.reap()
        call = criu.restore(CriuOptions(images, "restore.log", plugin_dir=plugins))
        assert call.restored_pid is not None
        workload.adopt(call.restored_pid)
        log = (images / "dump.log").read_text(errors="replace")
        if state == "cuda" and CHECKPOINTED not in log:
            return f"the CUDA plugin did not checkpoint the server (no {CHECKPOINTED!r} in its log)"
        after = _ask(sock, server, 2)
        if after != before + 1:
            return f"the GPU counter went from {before} to {after} across the migration"
    return None
