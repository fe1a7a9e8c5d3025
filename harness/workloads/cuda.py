"""The few CUDA driver API calls the GPU workloads need, through ctypes on ``libcuda.so.1``.

The driver library comes with the NVIDIA driver itself: no CUDA toolkit, no compiler, no Python
package. Every call is checked; a failure raises ``CudaError`` naming the call and the driver's
own name for the error (``CUDA_ERROR_OUT_OF_MEMORY``), and a machine without the driver gets
``CudaUnavailable`` saying so instead of an ``OSError`` from ctypes.
"""

from __future__ import annotations

import ctypes
from typing import Any

__all__ = ["LIBCUDA", "Context", "CudaError", "CudaUnavailable", "DeviceMemory", "Driver"]

LIBCUDA = "libcuda.so.1"  # the driver's soname; libcuda.so (no version) is only in toolkits
CUDA_SUCCESS = 0


class CudaError(RuntimeError):
    """A driver call failed: which call, its result code and the driver's name for it."""

    def __init__(self, call: str, code: int, name: str = "", text: str = "") -> None:
        self.call, self.code, self.name, self.text = call, code, name, text
        what = name or f"error {code}"
        super().__init__(f"{call} failed: {what}" + (f" ({text})" if text else ""))


class CudaUnavailable(CudaError):
    """The driver library cannot be loaded: no NVIDIA driver on this machine."""

    def __init__(self, library: str, reason: str) -> None:
        RuntimeError.__init__(self, f"cannot load {library} ({reason}): no NVIDIA driver here?")
        self.call, self.code, self.name, self.text = "dlopen", -1, "", reason
        self.library = library


class Driver:
    """``libcuda.so.1``, loaded; ``call(name, *args)`` runs a driver function and checks it."""

    def __init__(self, library: str = LIBCUDA) -> None:
        try:
            self.lib = ctypes.CDLL(library)
        except OSError as exc:
            raise CudaUnavailable(library, str(exc)) from None
        self.library = library

    def call(self, name: str, *args: Any) -> None:
        try:
            function = getattr(self.lib, name)
        except AttributeError:
            text = f"{self.library} has no {name}: driver too old?"
            raise CudaError(name, -1, text=text) from None
        code = int(function(*args))
        if code != CUDA_SUCCESS:
            raise CudaError(name, code, *self._describe(code))

    def _describe(self, code: int) -> tuple[str, str]:
        name, text = ctypes.c_char_p(), ctypes.c_char_p()
        try:
            self.lib.cuGetErrorName(code, ctypes.byref(name))
            self.lib.cuGetErrorString(code, ctypes.byref(text))
        except AttributeError:
            return "", ""
        return (name.value or b"").decode(), (text.value or b"").decode()


class DeviceMemory:
    """An allocation in device memory (``cuMemAlloc_v2``), read and written whole or by word."""

    def __init__(self, driver: Driver, size: int) -> None:
        self.driver, self.size = driver, size
        self.ptr = ctypes.c_uint64()  # CUdeviceptr
        driver.call("cuMemAlloc_v2", ctypes.byref(self.ptr), ctypes.c_size_t(size))

    def write(self, data: bytes, offset: int = 0) -> None:
        self._check(offset, len(data))
        buf = ctypes.create_string_buffer(data, len(data))
        self.driver.call("cuMemcpyHtoD_v2", ctypes.c_uint64(self.ptr.value + offset), buf,
                         ctypes.c_size_t(len(data)))

    def read(self, size: int, offset: int = 0) -> bytes:
        self._check(offset, size)
        buf = ctypes.create_string_buffer(size)
        self.driver.call("cuMemcpyDtoH_v2", buf, ctypes.c_uint64(self.ptr.value + offset),
                         ctypes.c_size_t(size))
        return buf.raw

    def fill32(self, value: int, offset: int = 0, size: int | None = None) -> None:
        """Set every 32-bit word of [offset, offset + size) to value (``cuMemsetD32_v2``)."""
        size = self.size - offset if size is None else size
        self._check(offset, size)
        self.driver.call("cuMemsetD32_v2", ctypes.c_uint64(self.ptr.value + offset),
                         ctypes.c_uint32(value), ctypes.c_size_t(size // 4))

    def _check(self, offset: int, size: int) -> None:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise ValueError(f"[{offset}, {offset + size}) is outside an allocation of {self.size}")


class Context:
    """A CUDA context on one device, current in the calling thread (``cuCtxCreate_v2``)."""

    def __init__(self, device: int = 0, library: str = LIBCUDA) -> None:
        self.driver = Driver(library)
        self.driver.call("cuInit", ctypes.c_uint(0))
        handle = ctypes.c_int()
        self.driver.call("cuDeviceGet", ctypes.byref(handle), ctypes.c_int(device))
        self.device = handle.value
        name = ctypes.create_string_buffer(256)
        self.driver.call("cuDeviceGetName", name, ctypes.c_int(len(name)), handle)
        self.device_name = name.value.decode(errors="replace")
        self.ctx = ctypes.c_void_p()  # CUcontext
        self.driver.call("cuCtxCreate_v2", ctypes.byref(self.ctx), ctypes.c_uint(0), handle)

    def alloc(self, size: int) -> DeviceMemory:
        return DeviceMemory(self.driver, size)

    def synchronize(self) -> None:
        """Wait until the device has done all it was asked (memsets are asynchronous)."""
        self.driver.call("cuCtxSynchronize")
