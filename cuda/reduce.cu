// Reductions on CUDA: sum, mean, max, min, prod, argmax, argmin over any set of axes, softmax and
// log-softmax along one axis. Every result is reproducible run to run: no atomics, each thread
// accumulates a fixed set of elements in a fixed order and blocks combine in a fixed tree.
//
// Three launch shapes, picked per call from the layout (the CPU's coalesced kept/reduced dims):
//  - block per output: the reduced elements are contiguous in memory (e.g. the last axis), so a
//    block of threads reads each output's elements side by side and combines them in a tree;
//  - thread per output: otherwise (e.g. a middle axis), so neighbouring threads read neighbouring
//    outputs' elements and the loads coalesce;
//  - either one split into fixed-size chunks of the reduced range when there are too few outputs
//    to fill the GPU; the chunks' partial results are combined in chunk order by a second kernel.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "cuda/backend.h"
#include "cuda/common.h"
#include "kernels/strided.h"

namespace joule::cuda {
namespace {

using ops::ReduceOp;

struct ReduceLayout {
  int kept_ndim, red_ndim;
  int64_t kept_shape[kMaxDims], kept_stride[kMaxDims];
  int64_t red_shape[kMaxDims], red_stride[kMaxDims];
};

// Element offset, inside the input, of output number o (row-major over the kept dims).
__device__ inline int64_t kept_offset(const ReduceLayout& l, int64_t o) {
  int64_t off = 0;
  for (int d = l.kept_ndim - 1; d >= 0; --d) {
    off += (o % l.kept_shape[d]) * l.kept_stride[d];
    o /= l.kept_shape[d];
  }
  return off;
}

// Element offset of reduced element j relative to its output's base.
__device__ inline int64_t red_offset(const ReduceLayout& l, int64_t j) {
  if (l.red_ndim == 1) return j * l.red_stride[0];  // the common case, without 64-bit divisions
  int64_t off = 0;
  for (int d = l.red_ndim - 1; d >= 0; --d) {
    off += (j % l.red_shape[d]) * l.red_stride[d];
    j /= l.red_shape[d];
  }
  return off;
}

// ---- the reductions: identity, load one element, combine two partial results, finish ----
// combine() is associative and commutative, so any fixed grouping gives the CPU's answer (and
// the same answer every run).

template <typename T>
struct SumOp {
  // float32 sums in float (the brief: float32 tree); integer sums wrap like the CPU's int64 -> int32.
  using Acc = std::conditional_t<std::is_floating_point_v<T>, float, unsigned long long>;
  using Out = std::conditional_t<std::is_floating_point_v<T>, float, int32_t>;
  __device__ static Acc identity() { return Acc(0); }
  __device__ static Acc load(T x, int64_t) {
    if constexpr (std::is_floating_point_v<T>) return x;
    else return static_cast<unsigned long long>(static_cast<long long>(x));
  }
  __device__ static Acc combine(Acc a, Acc b) { return a + b; }
  __device__ static Out finish(Acc a, int64_t) {
    if constexpr (std::is_floating_point_v<T>) return a;
    else return static_cast<int32_t>(static_cast<uint32_t>(a));
  }
};

struct MeanOp : SumOp<float> {  // the ops layer casts to float32 first
  __device__ static float finish(float a, int64_t n) {
    return static_cast<float>(static_cast<double>(a) / static_cast<double>(n));
  }
};

template <typename T>
struct ProdOp {
  // Products keep the CPU's double accumulator: a float32 running product overflows or
  // underflows where the CPU's does not (products are rare; FP64 cost does not matter here).
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, unsigned long long>;
  using Out = std::conditional_t<std::is_floating_point_v<T>, float, int32_t>;
  __device__ static Acc identity() { return Acc(1); }
  __device__ static Acc load(T x, int64_t) {
    if constexpr (std::is_floating_point_v<T>) return static_cast<double>(x);
    else return static_cast<unsigned long long>(static_cast<long long>(x));
  }
  __device__ static Acc combine(Acc a, Acc b) { return a * b; }
  __device__ static Out finish(Acc a, int64_t) {
    if constexpr (std::is_floating_point_v<T>) return static_cast<float>(a);
    else return static_cast<int32_t>(static_cast<uint32_t>(a));
  }
};

// Max/min and argmax/argmin: NaN wins (the first NaN), ties keep the first index — the CPU's
// ExtremeAcc, made order-independent by comparing indices on ties.
template <typename T>
struct Extreme {
  T v;
  long long index;  // -1: empty
};

template <typename T, bool kMax, bool kArg>
struct ExtremeOp {
  using Acc = Extreme<T>;
  using Out = std::conditional_t<kArg, int32_t, T>;
  __device__ static Acc identity() { return Acc{T(0), -1}; }
  __device__ static Acc load(T x, int64_t j) { return Acc{x, static_cast<long long>(j)}; }
  __device__ static Acc combine(Acc a, Acc b) {
    if (a.index < 0) return b;
    if (b.index < 0) return a;
    if constexpr (std::is_floating_point_v<T>) {
      const bool an = a.v != a.v, bn = b.v != b.v;
      if (an || bn) {
        if (an && bn) return a.index < b.index ? a : b;
        return an ? a : b;
      }
    }
    if (a.v == b.v) return a.index < b.index ? a : b;
    if constexpr (kMax) return a.v > b.v ? a : b;
    else return a.v < b.v ? a : b;
  }
  __device__ static Out finish(Acc a, int64_t) {
    if constexpr (kArg) return static_cast<int32_t>(a.index);
    else return a.v;
  }
};

constexpr int kBlock = 256;  // threads of the block-per-output kernels (a power of two)

// Thread per (output, chunk): idx = chunk * n_out + output, so neighbouring threads take
// neighbouring outputs. chunks == 1 writes the result, otherwise partial[chunk * n_out + output].
template <typename T, typename Op>
__global__ void reduce_threads_kernel(ReduceLayout l, const T* in, int64_t n_out, int64_t n_red, int64_t chunk,
                                      int64_t chunks, typename Op::Acc* partial, typename Op::Out* out) {
  const int64_t total = n_out * chunks;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total; idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = idx % n_out, c = idx / n_out;
    const T* base = in + kept_offset(l, o);
    const int64_t j1 = min(n_red, (c + 1) * chunk);
    typename Op::Acc acc = Op::identity();
    for (int64_t j = c * chunk; j < j1; ++j) acc = Op::combine(acc, Op::load(base[red_offset(l, j)], j));
    if (chunks == 1) out[o] = Op::finish(acc, n_red); else partial[idx] = acc;
  }
}

// Block per (output, chunk), blk = chunk * n_out + output; threads stride over the chunk, then a
// shared-memory tree combines them.
template <typename T, typename Op>
__global__ void reduce_block_kernel(ReduceLayout l, const T* in, int64_t n_out, int64_t n_red, int64_t chunk,
                                    int64_t chunks, typename Op::Acc* partial, typename Op::Out* out) {
  __shared__ typename Op::Acc sh[kBlock];
  const int tid = threadIdx.x;
  const int64_t total = n_out * chunks;
  for (int64_t blk = blockIdx.x; blk < total; blk += gridDim.x) {
    const int64_t o = blk % n_out, c = blk / n_out;
    const T* base = in + kept_offset(l, o);
    const int64_t j1 = min(n_red, (c + 1) * chunk);
    typename Op::Acc acc = Op::identity();
    for (int64_t j = c * chunk + tid; j < j1; j += blockDim.x) acc = Op::combine(acc, Op::load(base[red_offset(l, j)], j));
    sh[tid] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (tid < s) sh[tid] = Op::combine(sh[tid], sh[tid + s]);
      __syncthreads();
    }
    if (tid == 0) {
      if (chunks == 1) out[o] = Op::finish(sh[0], n_red); else partial[blk] = sh[0];
    }
    __syncthreads();  // sh is reused by the next output
  }
}

// Combines partial[c * n_out + o] over the chunks c, block per output, in a fixed tree.
template <typename Op>
__global__ void reduce_partials_kernel(const typename Op::Acc* partial, int64_t n_out, int64_t chunks, int64_t n_red,
                                       typename Op::Out* out) {
  __shared__ typename Op::Acc sh[kBlock];
  const int tid = threadIdx.x;
  for (int64_t o = blockIdx.x; o < n_out; o += gridDim.x) {
    typename Op::Acc acc = Op::identity();
    for (int64_t c = tid; c < chunks; c += blockDim.x) acc = Op::combine(acc, partial[c * n_out + o]);
    sh[tid] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (tid < s) sh[tid] = Op::combine(sh[tid], sh[tid + s]);
      __syncthreads();
    }
    if (tid == 0) out[o] = Op::finish(sh[0], n_red);
    __syncthreads();
  }
}

unsigned grid_for(int64_t items) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(items, 1 << 30)));
}

int pow2_threads(int64_t n) {
  int t = 32;
  while (t < kBlock && t < n) t *= 2;
  return t;
}

template <typename T, typename Op>
void run_reduce(const ReduceLayout& l, const Tensor& a, const Tensor& out, int64_t n_out, int64_t n_red) {
  using Acc = typename Op::Acc;
  using Out = typename Op::Out;
  const int device = out.device().index;
  cudaStream_t st = stream(device);
  const T* in = a.data<T>();
  Out* po = out.data<Out>();
  const bool red_unit = l.red_ndim > 0 && l.red_stride[l.red_ndim - 1] == 1;
  if (red_unit && n_red >= 64) {
    // Split long reductions into chunks of 8192 when the outputs alone leave the GPU idle.
    int64_t chunk = n_red, chunks = 1;
    if (n_out < 1024 && n_red > 16384) {
      chunk = 8192;
      chunks = (n_red + chunk - 1) / chunk;
    }
    Scratch scratch(device, chunks > 1 ? sizeof(Acc) * static_cast<size_t>(n_out * chunks) : 0);
    Acc* partial = scratch.get<Acc>();
    reduce_block_kernel<T, Op><<<grid_for(n_out * chunks), pow2_threads(chunk), 0, st>>>(l, in, n_out, n_red, chunk,
                                                                                        chunks, partial, po);
    check_cuda(cudaGetLastError(), "reduce kernel launch");
    if (chunks > 1) {
      reduce_partials_kernel<Op><<<grid_for(n_out), pow2_threads(chunks), 0, st>>>(partial, n_out, chunks, n_red, po);
      check_cuda(cudaGetLastError(), "reduce partials kernel launch");
    }
    return;
  }
  // Thread per output; aim for about 64K threads by chunking when there are fewer outputs.
  int64_t chunks = 1;
  if (n_out < 65536) chunks = std::max<int64_t>(1, std::min<int64_t>((n_red + 255) / 256, 65536 / n_out));
  int64_t chunk = (n_red + chunks - 1) / chunks;
  chunks = (n_red + chunk - 1) / chunk;
  Scratch scratch(device, chunks > 1 ? sizeof(Acc) * static_cast<size_t>(n_out * chunks) : 0);
  Acc* partial = scratch.get<Acc>();
  reduce_threads_kernel<T, Op><<<grid_for((n_out * chunks + 255) / 256), 256, 0, st>>>(l, in, n_out, n_red, chunk,
                                                                                      chunks, partial, po);
  check_cuda(cudaGetLastError(), "reduce kernel launch");
  if (chunks > 1) {
    reduce_partials_kernel<Op><<<grid_for(n_out), pow2_threads(chunks), 0, st>>>(partial, n_out, chunks, n_red, po);
    check_cuda(cudaGetLastError(), "reduce partials kernel launch");
  }
}

template <typename T>
void reduce_typed(ReduceOp op, const ReduceLayout& l, const Tensor& a, const Tensor& out, int64_t n_out, int64_t n_red) {
  switch (op) {
    case ReduceOp::Sum: return run_reduce<T, SumOp<T>>(l, a, out, n_out, n_red);
    case ReduceOp::Mean:
      if constexpr (std::is_same_v<T, float>) return run_reduce<T, MeanOp>(l, a, out, n_out, n_red);
      fail(Code::Internal, "mean on CUDA expects a float32 input");
    case ReduceOp::Prod: return run_reduce<T, ProdOp<T>>(l, a, out, n_out, n_red);
    case ReduceOp::Max: return run_reduce<T, ExtremeOp<T, true, false>>(l, a, out, n_out, n_red);
    case ReduceOp::Min: return run_reduce<T, ExtremeOp<T, false, false>>(l, a, out, n_out, n_red);
    case ReduceOp::ArgMax: return run_reduce<T, ExtremeOp<T, true, true>>(l, a, out, n_out, n_red);
    case ReduceOp::ArgMin: return run_reduce<T, ExtremeOp<T, false, true>>(l, a, out, n_out, n_red);
  }
}

// ---- softmax / log-softmax over the middle axis of a contiguous [outer, n, inner] tensor ----

// inner == 1: one block per row (row = n contiguous floats); three passes over the row (max,
// sum of exponentials, write), each combined in a fixed tree.
__global__ void softmax_rows_kernel(const float* x, float* y, int64_t rows, int64_t n, int log) {
  __shared__ float sh[kBlock];
  const int tid = threadIdx.x;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float m = -INFINITY;
    for (int64_t j = tid; j < n; j += blockDim.x) {
      const float v = xr[j];
      m = (v != v || m != m) ? NAN : fmaxf(m, v);
    }
    sh[tid] = m;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (tid < s) {
        const float a = sh[tid], b = sh[tid + s];
        sh[tid] = (a != a || b != b) ? NAN : fmaxf(a, b);
      }
      __syncthreads();
    }
    m = sh[0];
    __syncthreads();
    if (m != m) {  // a NaN anywhere makes the whole row NaN, as on the CPU
      for (int64_t j = tid; j < n; j += blockDim.x) yr[j] = NAN;
      continue;
    }
    if (isinf(m) && m < 0) m = 0.f;  // a row of -inf: shift by 0 rather than make NaN
    float sum = 0.f;
    for (int64_t j = tid; j < n; j += blockDim.x) sum += expf(xr[j] - m);
    sh[tid] = sum;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (tid < s) sh[tid] += sh[tid + s];
      __syncthreads();
    }
    sum = sh[0];
    __syncthreads();
    if (log) {
      const float lse = m + logf(sum);
      for (int64_t j = tid; j < n; j += blockDim.x) yr[j] = xr[j] - lse;
    } else {
      const float inv = 1.f / sum;
      for (int64_t j = tid; j < n; j += blockDim.x) yr[j] = expf(xr[j] - m) * inv;
    }
  }
}

// inner > 1: one thread per (outer, inner) column, serial along n (stride inner); neighbouring
// threads read neighbouring columns.
__global__ void softmax_strided_kernel(const float* x, float* y, int64_t outer, int64_t n, int64_t inner, int log) {
  const int64_t cols = outer * inner;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < cols; c += int64_t(gridDim.x) * blockDim.x) {
    const int64_t base = (c / inner) * n * inner + c % inner;
    const float* xc = x + base;
    float* yc = y + base;
    float m = -INFINITY;
    bool nan = false;
    for (int64_t j = 0; j < n; ++j) {
      const float v = xc[j * inner];
      nan = nan || v != v;
      m = v > m ? v : m;
    }
    if (nan) {
      for (int64_t j = 0; j < n; ++j) yc[j * inner] = NAN;
      continue;
    }
    if (isinf(m) && m < 0) m = 0.f;
    float sum = 0.f;
    for (int64_t j = 0; j < n; ++j) sum += expf(xc[j * inner] - m);
    if (log) {
      const float lse = m + logf(sum);
      for (int64_t j = 0; j < n; ++j) yc[j * inner] = xc[j * inner] - lse;
    } else {
      const float inv = 1.f / sum;
      for (int64_t j = 0; j < n; ++j) yc[j * inner] = expf(xc[j * inner] - m) * inv;
    }
  }
}

__global__ void zero_infinities_kernel(float* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    if (isinf(x[i])) x[i] = 0.f;
  }
}

}  // namespace

void reduce(ReduceOp op, const Tensor& a, const std::vector<bool>& reduced, const Tensor& out) {
  JOULE_CHECK(out.is_contiguous(), Code::Internal, "reduce on CUDA: the output must be contiguous");
  Shape kept_shape, kept_strides, red_shape, red_strides;
  for (int64_t d = 0; d < a.dim(); ++d) {
    (reduced[d] ? red_shape : kept_shape).push_back(a.shape[d]);
    (reduced[d] ? red_strides : kept_strides).push_back(a.strides[d]);
  }
  const int64_t n_out = shape_numel(kept_shape), n_red = shape_numel(red_shape);
  if (n_out == 0 || n_red == 0) return;  // the ops layer fills empty reductions
  kernels::Layout<1> kept = kernels::coalesce<1>(kept_shape, {&kept_strides});
  kernels::Layout<1> red = kernels::coalesce<1>(red_shape, {&red_strides});
  ReduceLayout l{};
  l.kept_ndim = kept.ndim;
  l.red_ndim = red.ndim;
  for (int d = 0; d < kept.ndim; ++d) {
    l.kept_shape[d] = kept.shape[d];
    l.kept_stride[d] = kept.strides[0][d];
  }
  for (int d = 0; d < red.ndim; ++d) {
    l.red_shape[d] = red.shape[d];
    l.red_stride[d] = red.strides[0][d];
  }
  if (l.red_ndim == 0) {  // every reduced dim has size 1: one element per output
    l.red_ndim = 1;
    l.red_shape[0] = 1;
    l.red_stride[0] = 1;
  }
  dispatch_dtype(a.dtype, [&](auto tag) { reduce_typed<decltype(tag)>(op, l, a, out, n_out, n_red); });
}

void softmax(const Tensor& x, const Tensor& out, int64_t axis, bool log) {
  JOULE_CHECK(x.dtype == DType::Float32 && x.is_contiguous() && out.is_contiguous(), Code::Internal,
              "softmax on CUDA expects contiguous float32 tensors");
  const int64_t n = x.shape[axis];
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape[d];
  for (int64_t d = axis + 1; d < x.dim(); ++d) inner *= x.shape[d];
  if (n == 0 || outer == 0 || inner == 0) return;
  cudaStream_t st = stream(x.device().index);
  if (inner == 1) {
    softmax_rows_kernel<<<grid_for(outer), pow2_threads(n), 0, st>>>(x.data<float>(), out.data<float>(), outer, n,
                                                                      log ? 1 : 0);
  } else {
    softmax_strided_kernel<<<grid_for((outer * inner + 255) / 256), 256, 0, st>>>(x.data<float>(), out.data<float>(),
                                                                                   outer, n, inner, log ? 1 : 0);
  }
  check_cuda(cudaGetLastError(), "softmax kernel launch");
}

void zero_infinities(const Tensor& t) {
  JOULE_CHECK(t.dtype == DType::Float32 && t.is_contiguous(), Code::Internal,
              "zero_infinities on CUDA expects a contiguous float32 tensor");
  const int64_t n = t.numel();
  if (n == 0) return;
  zero_infinities_kernel<<<grid_for((n + 255) / 256), 256, 0, stream(t.device().index)>>>(t.data<float>(), n);
  check_cuda(cudaGetLastError(), "zero_infinities kernel launch");
}

}  // namespace joule::cuda
