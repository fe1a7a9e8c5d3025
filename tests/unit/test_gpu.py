"""The cuda feature names the first piece missing, walked through with stand-in tools on PATH
(no GPU needed); and --cuda-checkpoint puts the chosen tool where CRIU's plugin finds it."""

from __future__ import annotations

import ctypes
import os
import shutil
import stat
from pathlib import Path

import pytest

from harness import gpu, preflight
from harness.criu import plugins
from harness.errors import UsageError

HELP_570 = """CUDA checkpoint and restore utility.
Version 570.86.10. Copyright (C) 2025 NVIDIA Corporation. All rights reserved.
--get-state --pid <pid>
--action lock | checkpoint | restore | unlock --pid <pid> [--timeout <ms>]
--toggle --pid <pid>
--get-restore-tid --pid <pid>
"""
HELP_550 = "CUDA checkpoint and restore utility.\nVersion 550.54.14.\n--toggle --pid <pid>\n"


def prints(text: str) -> str:
    """A script body printing text with shell builtins only (PATH holds nothing else)."""
    return "printf '%s\\n' " + " ".join(f"'{line}'" for line in text.splitlines())


def tool(directory: Path, name: str, script: str) -> Path:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty PATH, an empty plugin directory and no /proc/driver/nvidia: add pieces."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv(gpu.ENV, raising=False)
    (tmp_path / "plugins").mkdir()
    monkeypatch.setenv(plugins.ENV, str(tmp_path / "plugins"))
    monkeypatch.setattr(gpu, "NVIDIA_PROC", tmp_path / "proc-driver-nvidia-gpus")
    return tmp_path


def test_each_missing_piece_is_named_in_turn(machine: Path) -> None:
    def detail() -> str:
        found = gpu.check("/usr/local/sbin/criu", with_trial=False)
        assert not found.available
        return found.detail

    bin_dir = machine / "bin"
    assert detail() == "no nvidia-smi on PATH: no NVIDIA GPU driver here"
    smi = tool(bin_dir, "nvidia-smi", "echo 'NVIDIA-SMI has failed because it could not "
                                      "communicate with the NVIDIA driver.' >&2; exit 9")
    assert detail() == ("nvidia-smi failed: NVIDIA-SMI has failed because it could not "
                        "communicate with the NVIDIA driver.")
    tool(bin_dir, "nvidia-smi", "true")
    assert detail() == "nvidia-smi lists no GPU"
    tool(bin_dir, "nvidia-smi", "echo 'NVIDIA H200, 580.159.04'")
    assert detail().startswith("no ") and detail().endswith("CUDA plugin would disable itself")
    (machine / "proc-driver-nvidia-gpus").mkdir()
    assert detail().startswith("no cuda-checkpoint on PATH (NVIDIA's public cuda-checkpoint")
    tool(bin_dir, "cuda-checkpoint", prints(HELP_550))
    assert detail() == (
        f"{bin_dir}/cuda-checkpoint (version 550.54.14) too old: no --action, --get-state, "
        "--get-restore-tid; CRIU's CUDA plugin needs them (driver r555 or later)"
    )
    tool(bin_dir, "cuda-checkpoint", prints(HELP_570))
    assert detail().startswith(f"no cuda_plugin.so in {machine}/plugins")
    (machine / "plugins" / "cuda_plugin.so").write_bytes(b"")
    found = gpu.check("/usr/local/sbin/criu", with_trial=False)
    assert found == gpu.CudaCheck(True, f"NVIDIA H200, 580.159.04 (x1); cuda-checkpoint "
                                        f"570.86.10; plugin in {machine}/plugins")
    assert smi.exists()


def test_the_trial_names_a_missing_driver(machine: Path) -> None:
    try:
        ctypes.CDLL("libcuda.so.1")
        pytest.skip("libcuda.so.1 loads here: the real trial covers this machine")
    except OSError:
        pass
    tool(machine / "bin", "nvidia-smi", "echo 'NVIDIA H200, 580.159.04'")
    tool(machine / "bin", "cuda-checkpoint", prints(HELP_570))
    (machine / "proc-driver-nvidia-gpus").mkdir()
    (machine / "plugins" / "cuda_plugin.so").write_bytes(b"")
    found = gpu.check("/usr/local/sbin/criu")
    assert not found.available
    assert found.detail.startswith("trial migration failed: the trial server did not start: ")
    assert "cannot load libcuda.so.1" in found.detail
    kept = Path(found.detail.rpartition("(kept: ")[2].rstrip(")"))
    assert (kept / "server.stderr").exists()
    shutil.rmtree(kept)


def test_the_feature_in_the_preflight(machine: Path) -> None:
    feature = preflight.probe.__wrapped__("/usr/local/sbin/criu", "cuda")
    assert feature == preflight.Feature("cuda", False, preflight.FEATURES["cuda"],
                                        "no nvidia-smi on PATH: no NVIDIA GPU driver here")
    assert preflight.skip_reason([feature]) == (
        "needs CRIU feature(s) missing here: "
        "cuda (no nvidia-smi on PATH: no NVIDIA GPU driver here)"
    )


def test_a_chosen_cuda_checkpoint_goes_first_on_path(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = machine / "nvidia" / "bin"
    elsewhere.mkdir(parents=True)
    chosen = tool(elsewhere, "cuda-checkpoint", "true")
    assert gpu.use_cuda_checkpoint(chosen) == chosen
    assert os.environ["PATH"].split(os.pathsep)[:2] == [str(elsewhere), str(machine / "bin")]
    gpu.use_cuda_checkpoint(chosen)  # once is enough
    assert os.environ["PATH"].count(str(elsewhere)) == 1
    monkeypatch.setenv("PATH", str(machine / "bin"))
    monkeypatch.setenv(gpu.ENV, str(chosen))
    assert gpu.find_cuda_checkpoint() == str(chosen)
    with pytest.raises(UsageError, match="must be named cuda-checkpoint"):
        gpu.use_cuda_checkpoint(tool(elsewhere, "cuda-ckpt", "true"))
    with pytest.raises(UsageError, match="no executable cuda-checkpoint there"):
        gpu.use_cuda_checkpoint(machine / "cuda-checkpoint")
