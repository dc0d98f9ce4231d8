// Helpers shared by the ops: argument checks that every op makes the same way.
#pragma once
#include <string>

#include "core/error.h"
#include "core/tensor.h"
#include "cuda/backend.h"
#include "kernels/gemm/gemm.h"

namespace joule::ops {

inline void require_same_device(const Tensor& a, const Tensor& b, const char* op) {
  JOULE_CHECK(a.device() == b.device(), Code::Device, op, ": expected tensors on the same device, got ", a.device().name(),
        " and ", b.device().name());
}

inline void require_dtype(const Tensor& t, DType dtype, const char* op, const char* what) {
  JOULE_CHECK(t.dtype == dtype, Code::Dtype, op, ": expected ", what, " to be ", dtype_name(dtype), ", got ",
        dtype_name(t.dtype));
}

// Ops without a CUDA kernel yet say so instead of silently copying to the host.
inline void require_cpu(const Tensor& t, const char* op) {
  JOULE_CHECK(t.device().is_cpu(), Code::Device, op, " has no CUDA kernel yet: move the tensor to 'cpu' first (got ",
        t.device().name(), ")");
}

// The GEMM c = a @ b on 2-D float32 views a [m, k], b [k, n], c [m, n], each addressed through its
// own strides, so a transposed view costs nothing. Scalars and epilogue are left at their defaults.
inline gemm::Sgemm sgemm_of(const Tensor& a, const Tensor& b, const Tensor& c) {
  gemm::Sgemm g;
  g.m = c.shape[0];
  g.n = c.shape[1];
  g.k = a.shape[1];
  g.a = a.data<float>();
  g.a_rs = a.strides[0];
  g.a_cs = a.strides[1];
  g.b = b.data<float>();
  g.b_rs = b.strides[0];
  g.b_cs = b.strides[1];
  g.c = c.data<float>();
  g.c_rs = c.strides[0];
  g.c_cs = c.strides[1];
  return g;
}

// A tensor on `device` with the contents of the CPU tensor `t`.
Tensor to_device(const Tensor& t, Device device);

}  // namespace joule::ops
