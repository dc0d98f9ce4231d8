// Shared by the .cu files: CUDA errors become joule::Error, one stream per device.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "core/error.h"
#include "cuda/backend.h"

namespace joule::cuda {

inline void check_cuda(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear the sticky-free error state so the next call starts clean
  Code code = status == cudaErrorMemoryAllocation ? Code::OutOfMemory : Code::Device;
  fail(code, what, ": ", cudaGetErrorName(status), ": ", cudaGetErrorString(status));
}

cudaStream_t stream(int device);  // makes `device` current and returns its stream

// A device scratch buffer from the caching allocator, returned when it goes out of scope. Freeing
// right after queuing the kernels that use it is safe: the block's next user runs later on the
// same stream.
class Scratch {
 public:
  Scratch(int device, size_t bytes) : device_(device), bytes_(bytes) {
    if (bytes_ > 0) ptr_ = device_malloc(device_, bytes_);
  }
  ~Scratch() {
    if (ptr_ != nullptr) device_free(device_, ptr_, bytes_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T>
  T* get() const {
    return static_cast<T*>(ptr_);
  }

 private:
  int device_;
  size_t bytes_;
  void* ptr_ = nullptr;
};

}  // namespace joule::cuda
