#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "kernels/cpu.h"
#include "kernels/strided.h"

namespace joule::kernels {
namespace {

using ops::ReduceOp;

// Element offset of output number `o` (row-major over the kept dims) inside the input.
int64_t kept_offset(const Layout<1>& kept, int64_t o) {
  int64_t off = 0;
  for (int d = kept.ndim - 1; d >= 0; --d) {
    off += (o % kept.shape[d]) * kept.strides[0][d];
    o /= kept.shape[d];
  }
  return off;
}

// Accumulators: sums of float32 are kept in double so a long reduction loses nothing visible.
template <typename T>
struct SumAcc {
  using V = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  V v = 0;
  void add(T x, int64_t) { v += static_cast<V>(x); }
  void merge(const SumAcc& o) { v += o.v; }
};
template <typename T>
struct ProdAcc {
  using V = std::conditional_t<std::is_floating_point_v<T>, double, uint64_t>;
  V v = 1;
  void add(T x, int64_t) { v *= static_cast<V>(x); }
  void merge(const ProdAcc& o) { v *= o.v; }
};
// Max/min and arg-max/min share one accumulator: NaN wins (and its first index), ties keep the
// first index, as PyTorch does.
template <typename T, bool kMax>
struct ExtremeAcc {
  T v{};
  int64_t index = -1;
  bool better(T x) const {
    if (index < 0) return true;
    if constexpr (std::is_floating_point_v<T>) {
      if (v != v) return false;
      if (x != x) return true;
    }
    return kMax ? x > v : x < v;
  }
  void add(T x, int64_t i) {
    if (better(x)) {
      v = x;
      index = i;
    }
  }
  void merge(const ExtremeAcc& o) {
    if (o.index >= 0 && better(o.v)) {
      v = o.v;
      index = o.index;
    }
  }
};

// Reduced elements per chunk when a few outputs are split across workers. A fixed chunk size
// (not one per thread) keeps the order of summation, and so the result, independent of the
// thread count.
constexpr int64_t kReduceChunk = 1 << 16;

template <typename T, typename Acc>
void accumulate(const T* base, const Layout<1>& red, int64_t begin, int64_t end, int64_t index_base, Acc& acc) {
  int64_t i = begin;
  for_each_run<1>(red, begin, end, [&](int64_t n, const std::array<int64_t, 1>& off, const std::array<int64_t, 1>& st) {
    const T* p = base + off[0];
    if (st[0] == 1) {
      for (int64_t j = 0; j < n; ++j) acc.add(p[j], index_base + i + j);
    } else {
      for (int64_t j = 0; j < n; ++j) acc.add(p[j * st[0]], index_base + i + j);
    }
    i += n;
  });
}

template <typename T, typename Acc, typename Emit>
void run_reduce(const Tensor& a, const Layout<1>& kept, const Layout<1>& red, int64_t n_out, int64_t n_red, Emit emit) {
  const T* pa = a.data<T>();
  if (n_out >= num_threads() || n_red <= kReduceChunk) {
    parallel_for(n_out, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, n_red)), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        Acc acc;
        accumulate<T>(pa + kept_offset(kept, o), red, 0, n_red, 0, acc);
        emit(o, acc, n_red);
      }
    });
    return;
  }
  int64_t chunks = (n_red + kReduceChunk - 1) / kReduceChunk;
  std::vector<Acc> partial(static_cast<size_t>(chunks));
  for (int64_t o = 0; o < n_out; ++o) {
    const T* base = pa + kept_offset(kept, o);
    parallel_for(chunks, 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        Acc acc;
        accumulate<T>(base, red, c * kReduceChunk, std::min(n_red, (c + 1) * kReduceChunk), 0, acc);
        partial[c] = acc;
      }
    });
    Acc total;
    for (auto& p : partial) total.merge(p);
    emit(o, total, n_red);
  }
}

template <typename T>
void reduce_typed(ReduceOp op, const Tensor& a, const Layout<1>& kept, const Layout<1>& red, int64_t n_out,
                  int64_t n_red, const Tensor& out) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Mean: {
      bool mean = op == ReduceOp::Mean;
      if (out.dtype == DType::Float32) {
        float* po = out.data<float>();
        run_reduce<T, SumAcc<T>>(a, kept, red, n_out, n_red, [&](int64_t o, const SumAcc<T>& acc, int64_t n) {
          double v = static_cast<double>(acc.v);
          po[o] = static_cast<float>(mean ? v / static_cast<double>(n) : v);
        });
      } else {
        int32_t* po = out.data<int32_t>();
        run_reduce<T, SumAcc<T>>(a, kept, red, n_out, n_red, [&](int64_t o, const SumAcc<T>& acc, int64_t) {
          po[o] = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(acc.v)));
        });
      }
      return;
    }
    case ReduceOp::Prod: {
      if (out.dtype == DType::Float32) {
        float* po = out.data<float>();
        run_reduce<T, ProdAcc<T>>(a, kept, red, n_out, n_red,
                                  [&](int64_t o, const ProdAcc<T>& acc, int64_t) { po[o] = static_cast<float>(acc.v); });
      } else {
        int32_t* po = out.data<int32_t>();
        run_reduce<T, ProdAcc<T>>(a, kept, red, n_out, n_red, [&](int64_t o, const ProdAcc<T>& acc, int64_t) {
          po[o] = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(acc.v)));
        });
      }
      return;
    }
    case ReduceOp::Max:
    case ReduceOp::Min:
    case ReduceOp::ArgMax:
    case ReduceOp::ArgMin: {
      bool arg = op == ReduceOp::ArgMax || op == ReduceOp::ArgMin;
      auto go = [&](auto acc_tag) {
        using Acc = decltype(acc_tag);
        if (arg) {
          int32_t* po = out.data<int32_t>();
          run_reduce<T, Acc>(a, kept, red, n_out, n_red,
                             [&](int64_t o, const Acc& acc, int64_t) { po[o] = static_cast<int32_t>(acc.index); });
        } else {
          T* po = out.data<T>();
          run_reduce<T, Acc>(a, kept, red, n_out, n_red, [&](int64_t o, const Acc& acc, int64_t) { po[o] = acc.v; });
        }
      };
      if (op == ReduceOp::Max || op == ReduceOp::ArgMax) go(ExtremeAcc<T, true>{}); else go(ExtremeAcc<T, false>{});
      return;
    }
  }
}

}  // namespace

void reduce(ReduceOp op, const Tensor& a, const std::vector<bool>& reduced, const Tensor& out) {
  Shape kept_shape, kept_strides, red_shape, red_strides;
  for (int64_t d = 0; d < a.dim(); ++d) {
    if (reduced[d]) {
      red_shape.push_back(a.shape[d]);
      red_strides.push_back(a.strides[d]);
    } else {
      kept_shape.push_back(a.shape[d]);
      kept_strides.push_back(a.strides[d]);
    }
  }
  Layout<1> kept = coalesce<1>(kept_shape, {&kept_strides});
  Layout<1> red = coalesce<1>(red_shape, {&red_strides});
  int64_t n_out = shape_numel(kept_shape), n_red = shape_numel(red_shape);
  if (n_out == 0) return;
  dispatch_dtype(a.dtype, [&](auto tag) { reduce_typed<decltype(tag)>(op, a, kept, red, n_out, n_red, out); });
}

void softmax_lastdim(const Tensor& a, const Tensor& out, bool log) {
  const int64_t cols = a.shape.empty() ? 1 : a.shape.back();
  const int64_t rows = cols == 0 ? 0 : a.numel() / cols;
  const float* pa = a.data<float>();
  float* po = out.data<float>();
  parallel_for(rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(cols, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* x = pa + r * cols;
      float* y = po + r * cols;
      float m = -std::numeric_limits<float>::infinity();
      bool nan = false;
      for (int64_t j = 0; j < cols; ++j) {
        nan = nan || x[j] != x[j];
        m = x[j] > m ? x[j] : m;
      }
      if (nan) {
        for (int64_t j = 0; j < cols; ++j) y[j] = std::numeric_limits<float>::quiet_NaN();
        continue;
      }
      // A row of -inf has no mass anywhere: shifting by -inf would give NaN, so shift by 0.
      if (std::isinf(m) && m < 0) m = 0.f;
      double sum = 0;
      for (int64_t j = 0; j < cols; ++j) {
        float ex = std::exp(x[j] - m);
        if (!log) y[j] = ex;
        sum += ex;
      }
      if (log) {
        float lse = m + static_cast<float>(std::log(sum));
        for (int64_t j = 0; j < cols; ++j) y[j] = x[j] - lse;
      } else {
        float inv = static_cast<float>(1.0 / sum);
        for (int64_t j = 0; j < cols; ++j) y[j] *= inv;
      }
    }
  });
}

}  // namespace joule::kernels
