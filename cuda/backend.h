// The CUDA side as the rest of Joule sees it. Built from cuda/*.cu when CUDA is compiled in;
// otherwise cpp/core/cuda_stub.cpp implements it and reports why CUDA is unavailable.
#pragma once
#include <cstddef>
#include <string>

#include "core/tensor.h"
#include "kernels/attention.h"
#include "ops/ops.h"

namespace joule::cuda {

struct BuildInfo {
  bool compiled = false;
  std::string architectures;  // e.g. "80-real;86-real;89-real;90"
  int runtime_version = 0;    // CUDART_VERSION, e.g. 13000
};
BuildInfo build_info();

int device_count();               // 0 when there is no usable GPU
std::string unavailable_reason(); // why device_count() is 0 ("" when it is not)
std::string device_name(int device);
void check_device(int device);    // throws DEVICE naming the reason when `device` cannot be used

// A caching allocator per device: freed blocks are kept and reused, never cudaFree'd per op.
void* device_malloc(int device, size_t bytes);
void device_free(int device, void* ptr, size_t bytes);
size_t cached_bytes(int device);
void release_cached();

// Work is queued on one stream per device; copies to the host wait for it.
void copy_to_device(int device, void* dst, const void* src, size_t bytes);
void copy_to_host(int device, void* dst, const void* src, size_t bytes);
void copy_on_device(int device, void* dst, const void* src, size_t bytes);
void synchronize(int device);

// The elementwise family (float32; operands broadcast to out's shape by zero strides).
void binary(ops::BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);
void unary(ops::UnaryOp op, const Tensor& a, const Tensor& out);
void fill(const Tensor& out, float value);
void copy_strided(const Tensor& src, const Tensor& dst);  // same dtype (float32), any strides

// Fused attention forward (cuda/attention.cu): the pointers in `a` are on `device`.
void attention_forward(const kernels::AttentionArgs& a, int device);

}  // namespace joule::cuda
