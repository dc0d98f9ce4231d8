// The elementwise family on CUDA: broadcasting binary ops, unary math, fill and strided copy,
// for float32. Each thread computes one output element from its multi-index.
#include <cstdint>

#include "cuda/backend.h"
#include "cuda/common.h"

namespace joule::cuda {
namespace {

using ops::BinaryOp;
using ops::UnaryOp;

struct Indexer {
  int ndim;
  int64_t shape[kMaxDims];
  int64_t strides[3][kMaxDims];  // out, a, b
};

Indexer make_indexer(const Tensor& out, const Tensor* a, const Tensor* b) {
  Indexer ix{};
  ix.ndim = static_cast<int>(out.dim());
  for (int d = 0; d < ix.ndim; ++d) {
    ix.shape[d] = out.shape[d];
    ix.strides[0][d] = out.strides[d];
    ix.strides[1][d] = a ? a->strides[d] : 0;
    ix.strides[2][d] = b ? b->strides[d] : 0;
  }
  return ix;
}

__device__ inline void offsets(const Indexer& ix, int64_t linear, int64_t off[3]) {
  off[0] = off[1] = off[2] = 0;
  for (int d = ix.ndim - 1; d >= 0; --d) {
    int64_t i = linear % ix.shape[d];
    linear /= ix.shape[d];
    off[0] += i * ix.strides[0][d];
    off[1] += i * ix.strides[1][d];
    off[2] += i * ix.strides[2][d];
  }
}

__device__ inline float apply_binary(BinaryOp op, float x, float y) {
  switch (op) {
    case BinaryOp::Add: return x + y;
    case BinaryOp::Sub: return x - y;
    case BinaryOp::Mul: return x * y;
    case BinaryOp::Div: return x / y;
    case BinaryOp::Pow: return powf(x, y);
    case BinaryOp::Maximum: return (x != x || y != y) ? nanf("") : fmaxf(x, y);
    case BinaryOp::Minimum: return (x != x || y != y) ? nanf("") : fminf(x, y);
    default: return nanf("");
  }
}

__device__ inline float apply_unary(UnaryOp op, float x) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Abs: return fabsf(x);
    case UnaryOp::Exp: return expf(x);
    case UnaryOp::Log: return logf(x);
    case UnaryOp::Sqrt: return sqrtf(x);
    case UnaryOp::Rsqrt: return rsqrtf(x);
    case UnaryOp::Tanh: return tanhf(x);
    case UnaryOp::Sigmoid: return x >= 0.f ? 1.f / (1.f + expf(-x)) : expf(x) / (1.f + expf(x));
    case UnaryOp::Relu: return x > 0.f ? x : (x != x ? x : 0.f);
    case UnaryOp::Gelu: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case UnaryOp::Silu: return x >= 0.f ? x / (1.f + expf(-x)) : x * expf(x) / (1.f + expf(x));
    case UnaryOp::Sign: return x > 0.f ? 1.f : x < 0.f ? -1.f : x;
    case UnaryOp::Square: return x * x;
    case UnaryOp::Reciprocal: return 1.f / x;
    case UnaryOp::Sin: return sinf(x);
    case UnaryOp::Cos: return cosf(x);
    case UnaryOp::Floor: return floorf(x);
    case UnaryOp::Ceil: return ceilf(x);
    case UnaryOp::Round: return nearbyintf(x);
    case UnaryOp::Log1p: return log1pf(x);
    case UnaryOp::Expm1: return expm1f(x);
    case UnaryOp::Erf: return erff(x);
  }
  return nanf("");
}

__global__ void binary_kernel(BinaryOp op, Indexer ix, int64_t n, float* out, const float* a, const float* b) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    offsets(ix, i, off);
    out[off[0]] = apply_binary(op, a[off[1]], b[off[2]]);
  }
}

__global__ void unary_kernel(UnaryOp op, Indexer ix, int64_t n, float* out, const float* a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    offsets(ix, i, off);
    out[off[0]] = apply_unary(op, a[off[1]]);
  }
}

__global__ void fill_kernel(Indexer ix, int64_t n, float* out, float value) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    offsets(ix, i, off);
    out[off[0]] = value;
  }
}

__global__ void copy_kernel(Indexer ix, int64_t n, float* out, const float* a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    offsets(ix, i, off);
    out[off[0]] = a[off[1]];
  }
}

constexpr int kThreads = 256;
unsigned blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

void require_f32(const Tensor& t, const char* what) {
  JOULE_CHECK(t.dtype == DType::Float32, Code::Dtype, what, " on CUDA supports float32 only for now, got ",
        dtype_name(t.dtype));
}

}  // namespace

void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  require_f32(a, "this binary op");
  JOULE_CHECK(!ops::is_comparison(op), Code::Device, "comparison ops have no CUDA kernel yet; move the tensors to 'cpu'");
  int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t st = stream(out.device().index);
  binary_kernel<<<blocks_for(n), kThreads, 0, st>>>(op, make_indexer(out, &a, &b), n, out.data<float>(),
                                                    a.data<float>(), b.data<float>());
  check_cuda(cudaGetLastError(), "binary kernel launch");
}

void unary(UnaryOp op, const Tensor& a, const Tensor& out) {
  require_f32(a, "this unary op");
  int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t st = stream(out.device().index);
  unary_kernel<<<blocks_for(n), kThreads, 0, st>>>(op, make_indexer(out, &a, nullptr), n, out.data<float>(),
                                                   a.data<float>());
  check_cuda(cudaGetLastError(), "unary kernel launch");
}

void fill(const Tensor& out, float value) {
  require_f32(out, "fill");
  int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t st = stream(out.device().index);
  fill_kernel<<<blocks_for(n), kThreads, 0, st>>>(make_indexer(out, nullptr, nullptr), n, out.data<float>(), value);
  check_cuda(cudaGetLastError(), "fill kernel launch");
}

void copy_strided(const Tensor& src, const Tensor& dst) {
  require_f32(src, "a strided copy");
  int64_t n = dst.numel();
  if (n == 0) return;
  cudaStream_t st = stream(dst.device().index);
  copy_kernel<<<blocks_for(n), kThreads, 0, st>>>(make_indexer(dst, &src, nullptr), n, dst.data<float>(),
                                                  src.data<float>());
  check_cuda(cudaGetLastError(), "copy kernel launch");
}

}  // namespace joule::cuda
