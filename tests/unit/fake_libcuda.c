/* A stand-in for libcuda.so.1 with the driver API's exact signatures: "device memory" is host
 * memory. It lets the tests drive harness/workloads/cuda.py through ctypes on a machine without
 * a GPU, including the error path (FAKE_CUDA_FAIL=<function name> makes that call fail). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef unsigned long long CUdeviceptr;

#define CUDA_SUCCESS 0
#define CUDA_ERROR_OUT_OF_MEMORY 2
#define CUDA_ERROR_NO_DEVICE 100

static int fails(const char *name)
{
	const char *which = getenv("FAKE_CUDA_FAIL");
	return which && strcmp(which, name) == 0;
}

CUresult cuInit(unsigned int flags)
{
	return fails("cuInit") || flags ? CUDA_ERROR_NO_DEVICE : CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
	*device = ordinal;
	return ordinal == 0 ? CUDA_SUCCESS : CUDA_ERROR_NO_DEVICE;
}

CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
	strncpy(name, "Fake GPU", len);
	return CUDA_SUCCESS;
}

CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
	*pctx = (void *)0x1;
	return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void)
{
	return CUDA_SUCCESS;
}

CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
	void *p = fails("cuMemAlloc_v2") ? NULL : malloc(bytesize);
	if (!p)
		return CUDA_ERROR_OUT_OF_MEMORY;
	*dptr = (CUdeviceptr)(uintptr_t)p;
	return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n)
{
	memcpy((void *)(uintptr_t)dst, src, n);
	return CUDA_SUCCESS;
}

CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n)
{
	memcpy(dst, (const void *)(uintptr_t)src, n);
	return CUDA_SUCCESS;
}

CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned int value, size_t n)
{
	uint32_t *p = (uint32_t *)(uintptr_t)dst;
	for (size_t i = 0; i < n; i++)
		p[i] = value;
	return CUDA_SUCCESS;
}

CUresult cuGetErrorName(CUresult error, const char **s)
{
	*s = error == CUDA_ERROR_NO_DEVICE ? "CUDA_ERROR_NO_DEVICE" : "CUDA_ERROR_OUT_OF_MEMORY";
	return CUDA_SUCCESS;
}

CUresult cuGetErrorString(CUresult error, const char **s)
{
	*s = error == CUDA_ERROR_NO_DEVICE ? "no CUDA-capable device is detected" : "out of memory";
	return CUDA_SUCCESS;
}
