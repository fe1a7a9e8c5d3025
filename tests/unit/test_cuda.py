"""The CUDA driver wrapper through ctypes, without a GPU: a missing driver, and a stand-in
library with the driver API's signatures (fake_libcuda.c) for the calls and their errors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.workloads.cuda import Context, CudaError, CudaUnavailable, Driver
from harness.workloads.gpu_dgram import (
    CHUNK,
    DeviceState,
    HostState,
    check_ballast,
    pattern,
)


@pytest.fixture(scope="module")
def fake_libcuda(tmp_path_factory: pytest.TempPathFactory) -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the stand-in libcuda")
    out = tmp_path_factory.mktemp("cuda") / "libcuda-fake.so"
    source = Path(__file__).with_name("fake_libcuda.c")
    subprocess.run([cc, "-shared", "-fPIC", "-Wall", "-o", str(out), str(source)], check=True)
    return str(out)


def test_a_missing_driver_says_so() -> None:
    with pytest.raises(CudaUnavailable) as caught:
        Driver("libcuda-not-here.so.1")
    message = str(caught.value)
    assert message.startswith("cannot load libcuda-not-here.so.1 (")
    assert message.endswith("): no NVIDIA driver here?")
    assert isinstance(caught.value, CudaError) and caught.value.call == "dlopen"


def test_device_memory_round_trip(fake_libcuda: str) -> None:
    ctx = Context(library=fake_libcuda)
    assert ctx.device_name == "Fake GPU"
    mem = ctx.alloc(64)
    mem.write(b"counter!", offset=8)
    assert mem.read(8, offset=8) == b"counter!"
    mem.fill32(0xDEADBEEF, offset=16, size=16)
    assert mem.read(16, offset=16) == bytes.fromhex("efbeadde") * 4
    ctx.synchronize()
    with pytest.raises(ValueError, match="outside an allocation of 64"):
        mem.read(8, offset=60)


def test_a_failing_call_is_named_with_the_drivers_words(
    fake_libcuda: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CUDA_FAIL", "cuInit")
    with pytest.raises(CudaError) as caught:
        Context(library=fake_libcuda)
    assert str(caught.value) == (
        "cuInit failed: CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)"
    )
    assert caught.value.code == 100
    monkeypatch.setenv("FAKE_CUDA_FAIL", "cuMemAlloc_v2")
    with pytest.raises(CudaError, match="^cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY"):
        Context(library=fake_libcuda).alloc(1 << 20)


def test_a_function_the_driver_lacks(fake_libcuda: str) -> None:
    with pytest.raises(CudaError, match="has no cuNoSuchCall: driver too old"):
        Driver(fake_libcuda).call("cuNoSuchCall")


@pytest.mark.parametrize("kind", ["host", "device"])
def test_counter_and_ballast_states(kind: str, fake_libcuda: str) -> None:
    state = HostState(3) if kind == "host" else DeviceState(3, library=fake_libcuda)
    assert [state.increment() for _ in range(3)] == [1, 2, 3]
    assert [check_ballast(state, 3, n) for n in range(1, 8)] == ["ok"] * 7
    assert state.word(2, CHUNK // 4 - 1) == pattern(2) != pattern(1)


def test_a_ballast_chunk_out_of_place_is_caught() -> None:
    state = HostState(2)
    state.ballast[CHUNK:CHUNK + 4] = b"\0\0\0\0"  # chunk 1, word 0: as if lost in a restore
    assert check_ballast(state, 2, 1) == "bad@1"
    assert check_ballast(state, 2, 2) == "ok"
    assert check_ballast(state, 0, 5) == "ok"  # no ballast, nothing to check
