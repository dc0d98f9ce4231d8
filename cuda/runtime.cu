#include <map>
#include <mutex>
#include <vector>

#include "cuda/backend.h"
#include "cuda/common.h"

#ifndef JOULE_CUDA_ARCHITECTURES
#define JOULE_CUDA_ARCHITECTURES "unknown"
#endif

namespace joule::cuda {
namespace {

struct DeviceState {
  cudaStream_t stream = nullptr;
  std::multimap<size_t, void*> free_blocks;  // rounded size -> block
  size_t cached = 0;
};

std::mutex& state_mutex() {
  static std::mutex m;
  return m;
}
std::map<int, DeviceState>& states() {
  static auto* s = new std::map<int, DeviceState>();
  return *s;
}

struct Probe {
  int count = 0;
  std::string reason;
};

const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    cudaError_t status = cudaGetDeviceCount(&r.count);
    if (status != cudaSuccess) {
      cudaGetLastError();
      r.count = 0;
      r.reason = std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
    } else if (r.count == 0) {
      r.reason = "no CUDA device found";
    }
    return r;
  }();
  return p;
}

// Blocks are rounded so that the cache can serve nearby sizes: 512 B granularity below 1 MiB,
// 2 MiB above.
size_t round_size(size_t bytes) {
  size_t g = bytes < (size_t{1} << 20) ? 512 : (size_t{2} << 20);
  return bytes == 0 ? g : (bytes + g - 1) / g * g;
}

}  // namespace

BuildInfo build_info() { return {true, JOULE_CUDA_ARCHITECTURES, CUDART_VERSION}; }

int device_count() { return probe().count; }
std::string unavailable_reason() { return probe().reason; }

void check_device(int device) {
  if (probe().count == 0) fail(Code::Device, "CUDA is not available: ", probe().reason);
  JOULE_CHECK(device >= 0 && device < probe().count, Code::Device, "cuda:", device, " does not exist (", probe().count,
        " CUDA device(s) found)");
}

std::string device_name(int device) {
  check_device(device);
  cudaDeviceProp prop;
  check_cuda(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  return prop.name;
}

cudaStream_t stream(int device) {
  check_device(device);
  check_cuda(cudaSetDevice(device), "cudaSetDevice");
  std::lock_guard<std::mutex> lock(state_mutex());
  DeviceState& s = states()[device];
  if (!s.stream) check_cuda(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  return s.stream;
}

void* device_malloc(int device, size_t bytes) {
  cudaStream_t st = stream(device);
  (void)st;
  size_t size = round_size(bytes);
  {
    std::lock_guard<std::mutex> lock(state_mutex());
    DeviceState& s = states()[device];
    auto it = s.free_blocks.find(size);
    if (it != s.free_blocks.end()) {
      void* p = it->second;
      s.free_blocks.erase(it);
      s.cached -= size;
      return p;
    }
  }
  void* p = nullptr;
  cudaError_t status = cudaMalloc(&p, size);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    release_cached();  // give the cached blocks back to the driver and try once more
    status = cudaMalloc(&p, size);
  }
  check_cuda(status, "cudaMalloc");
  return p;
}

void device_free(int device, void* ptr, size_t bytes) {
  // Kernels still queued may use the block: the stream orders any reuse after them.
  std::lock_guard<std::mutex> lock(state_mutex());
  DeviceState& s = states()[device];
  size_t size = round_size(bytes);
  s.free_blocks.emplace(size, ptr);
  s.cached += size;
}

size_t cached_bytes(int device) {
  std::lock_guard<std::mutex> lock(state_mutex());
  auto it = states().find(device);
  return it == states().end() ? 0 : it->second.cached;
}

void release_cached() {
  std::lock_guard<std::mutex> lock(state_mutex());
  for (auto& [device, s] : states()) {
    if (s.free_blocks.empty()) continue;
    cudaSetDevice(device);
    if (s.stream) cudaStreamSynchronize(s.stream);
    for (auto& [size, p] : s.free_blocks) cudaFree(p);
    s.free_blocks.clear();
    s.cached = 0;
  }
}

void copy_to_device(int device, void* dst, const void* src, size_t bytes) {
  cudaStream_t st = stream(device);
  // The host buffer may be freed as soon as we return, so the copy must complete first.
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st), "cudaMemcpy to device");
  check_cuda(cudaStreamSynchronize(st), "cudaStreamSynchronize");
}

void copy_to_host(int device, void* dst, const void* src, size_t bytes) {
  cudaStream_t st = stream(device);
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, st), "cudaMemcpy to host");
  check_cuda(cudaStreamSynchronize(st), "cudaStreamSynchronize");
}

void copy_on_device(int device, void* dst, const void* src, size_t bytes) {
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream(device)), "cudaMemcpy on device");
}

void synchronize(int device) { check_cuda(cudaStreamSynchronize(stream(device)), "cudaStreamSynchronize"); }

}  // namespace joule::cuda
