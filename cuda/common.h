// Shared by the .cu files: CUDA errors become joule::Error, one stream per device.
#pragma once
#include <cuda_runtime.h>

#include "core/error.h"

namespace joule::cuda {

inline void check_cuda(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear the sticky-free error state so the next call starts clean
  Code code = status == cudaErrorMemoryAllocation ? Code::OutOfMemory : Code::Device;
  fail(code, what, ": ", cudaGetErrorName(status), ": ", cudaGetErrorString(status));
}

cudaStream_t stream(int device);  // makes `device` current and returns its stream

}  // namespace joule::cuda
