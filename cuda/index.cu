// Indexing and casts on CUDA: dtype casts (any strides), fill of any dtype, clamp, where,
// index_select, gather and scatter_add, for every dtype. One thread per output element.
//
// Out-of-range indices: the ops layer asks first_invalid_index() (an integer atomicMin of the
// bad positions, so the answer is the first one, as the CPU reports it), reads that one value
// back and throws the CPU's message; the kernels then run on valid indices only.
//
// scatter_add is deterministic without float atomics: one thread per element of the result
// scans the index entries along `axis` that can land on it (those sharing its other
// coordinates) in increasing order and adds the matching src values to the input's value — the
// CPU's order of additions exactly, so the result is bit-identical to the CPU's. Cost:
// out.numel() x index.shape[axis] index reads (plus one src read per hit); fine for the usual
// shapes, quadratic for a long scatter axis (a sort-based segmented sum would be the fix).
#include <cstdint>
#include <type_traits>

#include "cuda/backend.h"
#include "cuda/common.h"
#include "kernels/strided.h"

namespace joule::cuda {
namespace {

template <size_t N>
struct Strided {
  int ndim;
  int64_t shape[kMaxDims];
  int64_t strides[N][kMaxDims];
};

// Coalesced (size-1 dims dropped, contiguous runs merged) so that the per-element index math
// is as short as the layout allows.
template <size_t N>
Strided<N> make_strided(const Shape& shape, const std::array<const Shape*, N>& strides) {
  kernels::Layout<N> l = kernels::coalesce<N>(shape, strides);
  Strided<N> s{};
  s.ndim = l.ndim;
  for (int d = 0; d < l.ndim; ++d) {
    s.shape[d] = l.shape[d];
    for (size_t k = 0; k < N; ++k) s.strides[k][d] = l.strides[k][d];
  }
  return s;
}

template <size_t N>
__device__ inline void offsets_of(const Strided<N>& s, int64_t linear, int64_t (&off)[N]) {
  for (size_t k = 0; k < N; ++k) off[k] = 0;
  for (int d = s.ndim - 1; d >= 0; --d) {
    const int64_t i = linear % s.shape[d];
    linear /= s.shape[d];
    for (size_t k = 0; k < N; ++k) off[k] += i * s.strides[k][d];
  }
}

// Plain shape/strides for kernels that need each coordinate (the indexing ones).
struct Dims {
  int ndim;
  int64_t shape[kMaxDims];
  int64_t stride[kMaxDims];
};
Dims dims_of(const Shape& shape, const Shape& strides) {
  Dims d{};
  d.ndim = static_cast<int>(shape.size());
  for (int i = 0; i < d.ndim; ++i) {
    d.shape[i] = shape[i];
    d.stride[i] = strides[i];
  }
  return d;
}

template <typename T> struct IntLimits;
template <> struct IntLimits<int32_t> { static constexpr double lo = -2147483648.0, hi = 2147483647.0; };
template <> struct IntLimits<int8_t> { static constexpr double lo = -128.0, hi = 127.0; };
template <> struct IntLimits<uint8_t> { static constexpr double lo = 0.0, hi = 255.0; };

// convert_value (core/dtype.h) on the device: float to integer truncates toward zero and
// saturates (NaN -> 0); integer to integer wraps.
template <typename To, typename From>
__device__ inline To convert(From x) {
  if constexpr (std::is_floating_point_v<To>) {
    return static_cast<To>(x);
  } else if constexpr (std::is_floating_point_v<From>) {
    if (x != x) return To(0);
    const double d = static_cast<double>(x);
    if (d <= IntLimits<To>::lo) return static_cast<To>(IntLimits<To>::lo);
    if (d >= IntLimits<To>::hi) return static_cast<To>(IntLimits<To>::hi);
    return static_cast<To>(d);
  } else {
    return static_cast<To>(x);
  }
}

// Integer addition that wraps (through uint32) as the CPU's does in practice.
template <typename T>
__device__ inline T add_wrapping(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) return a + b;
  else return static_cast<T>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b));
}

#define JOULE_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

template <typename S, typename D>
__global__ void cast_kernel(Strided<2> s, int64_t n, D* dst, const S* src) {
  JOULE_GRID_STRIDE(i, n) {
    int64_t off[2];
    offsets_of<2>(s, i, off);
    dst[off[0]] = convert<D>(src[off[1]]);
  }
}

template <typename T>
__global__ void fill_kernel(Strided<1> s, int64_t n, T* out, T value) {
  JOULE_GRID_STRIDE(i, n) {
    int64_t off[1];
    offsets_of<1>(s, i, off);
    out[off[0]] = value;
  }
}

template <typename T>
__global__ void clamp_kernel(Strided<2> s, int64_t n, T* out, const T* a, bool has_lo, T lo, bool has_hi, T hi) {
  JOULE_GRID_STRIDE(i, n) {
    int64_t off[2];
    offsets_of<2>(s, i, off);
    T x = a[off[1]];
    if (has_lo && x < lo) x = lo;
    if (has_hi && x > hi) x = hi;
    out[off[0]] = x;
  }
}

template <typename C, typename T>
__global__ void where_kernel(Strided<4> s, int64_t n, T* out, const C* cond, const T* a, const T* b) {
  JOULE_GRID_STRIDE(i, n) {
    int64_t off[4];
    offsets_of<4>(s, i, off);
    out[off[0]] = cond[off[1]] != C(0) ? a[off[2]] : b[off[3]];
  }
}

__global__ void invalid_index_kernel(const int32_t* index, int64_t n, int64_t size, unsigned long long* first) {
  JOULE_GRID_STRIDE(i, n) {
    const int64_t v = index[i];
    if (v < -size || v >= size) atomicMin(first, static_cast<unsigned long long>(i));
  }
}

__device__ inline int64_t wrap_index(int32_t v, int64_t size) { return v < 0 ? v + size : v; }

// out (contiguous, a's shape with `axis` replaced by the index count) from a through index.
template <typename T>
__global__ void index_select_kernel(Dims a, Dims o, int axis, int64_t n, const int32_t* index, const T* src, T* out) {
  JOULE_GRID_STRIDE(i, n) {
    int64_t rem = i, off = 0;
    for (int d = o.ndim - 1; d >= 0; --d) {
      const int64_t c = rem % o.shape[d];
      rem /= o.shape[d];
      off += (d == axis ? wrap_index(index[c], a.shape[d]) : c) * a.stride[d];
    }
    out[i] = src[off];
  }
}

// out (contiguous, the index's shape): out[p] = a[p with p[axis] = index[p]].
template <typename T>
__global__ void gather_kernel(Dims a, Dims ix, int axis, int64_t n, const int32_t* index, const T* src, T* out) {
  JOULE_GRID_STRIDE(i, n) {
    int64_t rem = i, off = 0;
    for (int d = ix.ndim - 1; d >= 0; --d) {
      const int64_t c = rem % ix.shape[d];
      rem /= ix.shape[d];
      off += (d == axis ? wrap_index(index[i], a.shape[d]) : c) * a.stride[d];
    }
    out[i] = src[off];
  }
}

// out contiguous; ix: the (contiguous) index's shape and strides; sv: src's strides.
template <typename T>
__global__ void scatter_add_kernel(Dims o, Dims ix, Dims sv, int axis, int64_t n, const int32_t* index, const T* src,
                                   T* out) {
  JOULE_GRID_STRIDE(i, n) {
    int64_t rem = i, ix_base = 0, src_base = 0, target = 0;
    bool reachable = true;
    for (int d = o.ndim - 1; d >= 0; --d) {
      const int64_t c = rem % o.shape[d];
      rem /= o.shape[d];
      if (d == axis) {
        target = c;
      } else {
        reachable = reachable && c < ix.shape[d];
        ix_base += c * ix.stride[d];
        src_base += c * sv.stride[d];
      }
    }
    if (!reachable) continue;
    T acc = out[i];
    const int64_t count = ix.shape[axis];
    for (int64_t k = 0; k < count; ++k) {
      if (wrap_index(index[ix_base + k * ix.stride[axis]], o.shape[axis]) == target) {
        acc = add_wrapping(acc, src[src_base + k * sv.stride[axis]]);
      }
    }
    out[i] = acc;
  }
}

constexpr int kThreads = 256;
unsigned blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

}  // namespace

void copy_cast(const Tensor& src, const Tensor& dst) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  cudaStream_t st = stream(dst.device().index);
  Strided<2> s = make_strided<2>(dst.shape, {&dst.strides, &src.strides});
  dispatch_dtype(src.dtype, [&](auto src_tag) {
    dispatch_dtype(dst.dtype, [&](auto dst_tag) {
      using S = decltype(src_tag);
      using D = decltype(dst_tag);
      cast_kernel<S, D><<<blocks_for(n), kThreads, 0, st>>>(s, n, dst.data<D>(), src.data<S>());
    });
  });
  check_cuda(cudaGetLastError(), "cast kernel launch");
}

void fill_value(const Tensor& out, double value) {
  const int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t st = stream(out.device().index);
  Strided<1> s = make_strided<1>(out.shape, {&out.strides});
  dispatch_dtype(out.dtype, [&](auto tag) {
    using T = decltype(tag);
    fill_kernel<T><<<blocks_for(n), kThreads, 0, st>>>(s, n, out.data<T>(), convert_value<T>(value));
  });
  check_cuda(cudaGetLastError(), "fill kernel launch");
}

void clamp(const Tensor& a, double lo, double hi, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t st = stream(out.device().index);
  Strided<2> s = make_strided<2>(out.shape, {&out.strides, &a.strides});
  const bool has_lo = lo == lo, has_hi = hi == hi;
  dispatch_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T l = has_lo ? convert_value<T>(lo) : T(0), h = has_hi ? convert_value<T>(hi) : T(0);
    clamp_kernel<T><<<blocks_for(n), kThreads, 0, st>>>(s, n, out.data<T>(), a.data<T>(), has_lo, l, has_hi, h);
  });
  check_cuda(cudaGetLastError(), "clamp kernel launch");
}

void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t st = stream(out.device().index);
  Strided<4> s = make_strided<4>(out.shape, {&out.strides, &cond.strides, &a.strides, &b.strides});
  dispatch_dtype(cond.dtype, [&](auto cond_tag) {
    dispatch_dtype(a.dtype, [&](auto tag) {
      using C = decltype(cond_tag);
      using T = decltype(tag);
      where_kernel<C, T><<<blocks_for(n), kThreads, 0, st>>>(s, n, out.data<T>(), cond.data<C>(), a.data<T>(),
                                                             b.data<T>());
    });
  });
  check_cuda(cudaGetLastError(), "where kernel launch");
}

int64_t first_invalid_index(const Tensor& index, int64_t size, int32_t* value) {
  JOULE_CHECK(index.dtype == DType::Int32 && index.is_contiguous(), Code::Internal,
              "first_invalid_index expects a contiguous int32 tensor");
  const int64_t n = index.numel();
  if (n == 0) return -1;
  const int device = index.device().index;
  cudaStream_t st = stream(device);
  auto* first = static_cast<unsigned long long*>(device_malloc(device, sizeof(unsigned long long)));
  unsigned long long pos = ~0ull;
  try {
    check_cuda(cudaMemsetAsync(first, 0xff, sizeof(unsigned long long), st), "cudaMemsetAsync");
    invalid_index_kernel<<<blocks_for(n), kThreads, 0, st>>>(index.data<int32_t>(), n, size, first);
    check_cuda(cudaGetLastError(), "index check kernel launch");
    copy_to_host(device, &pos, first, sizeof(pos));
    if (pos != ~0ull) copy_to_host(device, value, index.data<int32_t>() + pos, sizeof(int32_t));
  } catch (...) {
    device_free(device, first, sizeof(unsigned long long));
    throw;
  }
  device_free(device, first, sizeof(unsigned long long));
  return pos == ~0ull ? -1 : static_cast<int64_t>(pos);
}

void index_select(const Tensor& a, int64_t axis, const Tensor& index, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t st = stream(out.device().index);
  Dims ad = dims_of(a.shape, a.strides), od = dims_of(out.shape, out.strides);
  dispatch_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    index_select_kernel<T><<<blocks_for(n), kThreads, 0, st>>>(ad, od, static_cast<int>(axis), n,
                                                               index.data<int32_t>(), a.data<T>(), out.data<T>());
  });
  check_cuda(cudaGetLastError(), "index_select kernel launch");
}

void gather(const Tensor& a, int64_t axis, const Tensor& index, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t st = stream(out.device().index);
  Dims ad = dims_of(a.shape, a.strides), id = dims_of(index.shape, index.strides);
  dispatch_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    gather_kernel<T><<<blocks_for(n), kThreads, 0, st>>>(ad, id, static_cast<int>(axis), n, index.data<int32_t>(),
                                                         a.data<T>(), out.data<T>());
  });
  check_cuda(cudaGetLastError(), "gather kernel launch");
}

void scatter_add(const Tensor& out, int64_t axis, const Tensor& index, const Tensor& src) {
  JOULE_CHECK(out.is_contiguous() && index.is_contiguous() && src.dtype == out.dtype, Code::Internal,
              "scatter_add on CUDA expects a contiguous output and index and src of the output's dtype");
  const int64_t n = out.numel();
  if (n == 0 || index.numel() == 0) return;
  cudaStream_t st = stream(out.device().index);
  Dims od = dims_of(out.shape, out.strides), id = dims_of(index.shape, index.strides),
       sd = dims_of(src.shape, src.strides);
  dispatch_dtype(out.dtype, [&](auto tag) {
    using T = decltype(tag);
    scatter_add_kernel<T><<<blocks_for(n), kThreads, 0, st>>>(od, id, sd, static_cast<int>(axis), n,
                                                              index.data<int32_t>(), src.data<T>(), out.data<T>());
  });
  check_cuda(cudaGetLastError(), "scatter_add kernel launch");
}

}  // namespace joule::cuda
