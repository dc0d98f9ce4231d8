#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/error.h"
#include "kernels/cpu.h"
#include "kernels/gemm/gemm.h"
#include "kernels/strided.h"

namespace joule::kernels {
namespace {

using ops::BinaryOp;
using ops::UnaryOp;

// Runs f over three operands; the contiguous and scalar-broadcast cases get loops the
// compiler can vectorise.
template <typename A, typename B, typename O, typename F>
void map2(const Tensor& a, const Tensor& b, const Tensor& out, F f) {
  const A* pa = a.data<A>();
  const B* pb = b.data<B>();
  O* po = out.data<O>();
  parallel_runs<3>(out.shape, {&out.strides, &a.strides, &b.strides}, kElementwiseGrain,
                   [&](int64_t n, const std::array<int64_t, 3>& off, const std::array<int64_t, 3>& st) {
                     O* o = po + off[0];
                     const A* x = pa + off[1];
                     const B* y = pb + off[2];
                     if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
                       for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
                     } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
                       const B s = *y;
                       for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], s);
                     } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {
                       const A s = *x;
                       for (int64_t i = 0; i < n; ++i) o[i] = f(s, y[i]);
                     } else {
                       for (int64_t i = 0; i < n; ++i) o[i * st[0]] = f(x[i * st[1]], y[i * st[2]]);
                     }
                   });
}

template <typename A, typename O, typename F>
void map1(const Tensor& a, const Tensor& out, F f, int64_t grain = kElementwiseGrain) {
  const A* pa = a.data<A>();
  O* po = out.data<O>();
  parallel_runs<2>(out.shape, {&out.strides, &a.strides}, grain,
                   [&](int64_t n, const std::array<int64_t, 2>& off, const std::array<int64_t, 2>& st) {
                     O* o = po + off[0];
                     const A* x = pa + off[1];
                     if (st[0] == 1 && st[1] == 1) {
                       for (int64_t i = 0; i < n; ++i) o[i] = f(x[i]);
                     } else {
                       for (int64_t i = 0; i < n; ++i) o[i * st[0]] = f(x[i * st[1]]);
                     }
                   });
}

// NaN-propagating maximum/minimum, as PyTorch's torch.maximum.
template <typename T>
T nan_max(T x, T y) {
  if constexpr (std::is_floating_point_v<T>) {
    if (x != x || y != y) return std::numeric_limits<T>::quiet_NaN();
  }
  return x > y ? x : y;
}
template <typename T>
T nan_min(T x, T y) {
  if constexpr (std::is_floating_point_v<T>) {
    if (x != x || y != y) return std::numeric_limits<T>::quiet_NaN();
  }
  return x < y ? x : y;
}

template <typename T>
void binary_typed(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  // Integer arithmetic wraps like two's complement (as PyTorch does), so it is done in a
  // wider unsigned type where C++ would call signed overflow undefined.
  using W = std::conditional_t<std::is_floating_point_v<T>, T, uint32_t>;
  switch (op) {
    case BinaryOp::Add: return map2<T, T, T>(a, b, out, [](T x, T y) { return T(W(x) + W(y)); });
    case BinaryOp::Sub: return map2<T, T, T>(a, b, out, [](T x, T y) { return T(W(x) - W(y)); });
    case BinaryOp::Mul: return map2<T, T, T>(a, b, out, [](T x, T y) { return T(W(x) * W(y)); });
    case BinaryOp::Div:
    case BinaryOp::Pow:
      // The ops layer promotes both to float32; integer division by zero would trap.
      if constexpr (std::is_floating_point_v<T>) {
        if (op == BinaryOp::Div) return map2<T, T, T>(a, b, out, [](T x, T y) { return x / y; });
        return map2<T, T, T>(a, b, out, [](T x, T y) { return T(std::pow(x, y)); });
      } else {
        fail(Code::Internal, "integer division reached the kernel");
      }
    case BinaryOp::Maximum: return map2<T, T, T>(a, b, out, nan_max<T>);
    case BinaryOp::Minimum: return map2<T, T, T>(a, b, out, nan_min<T>);
    case BinaryOp::Eq: return map2<T, T, uint8_t>(a, b, out, [](T x, T y) { return uint8_t(x == y); });
    case BinaryOp::Ne: return map2<T, T, uint8_t>(a, b, out, [](T x, T y) { return uint8_t(x != y); });
    case BinaryOp::Lt: return map2<T, T, uint8_t>(a, b, out, [](T x, T y) { return uint8_t(x < y); });
    case BinaryOp::Le: return map2<T, T, uint8_t>(a, b, out, [](T x, T y) { return uint8_t(x <= y); });
    case BinaryOp::Gt: return map2<T, T, uint8_t>(a, b, out, [](T x, T y) { return uint8_t(x > y); });
    case BinaryOp::Ge: return map2<T, T, uint8_t>(a, b, out, [](T x, T y) { return uint8_t(x >= y); });
  }
}

// Transcendental functions cost far more than a memory access: thread them on smaller tensors.
constexpr int64_t kMathGrain = 1 << 12;

void unary_float(UnaryOp op, const Tensor& a, const Tensor& out) {
  auto m = [&](auto f) { map1<float, float>(a, out, f, kMathGrain); };
  switch (op) {
    case UnaryOp::Neg: return map1<float, float>(a, out, [](float x) { return -x; });
    case UnaryOp::Abs: return map1<float, float>(a, out, [](float x) { return std::fabs(x); });
    case UnaryOp::Square: return map1<float, float>(a, out, [](float x) { return x * x; });
    case UnaryOp::Relu: return map1<float, float>(a, out, [](float x) { return x > 0.f ? x : (x != x ? x : 0.f); });
    case UnaryOp::Sign:
      return map1<float, float>(a, out, [](float x) { return x > 0.f ? 1.f : x < 0.f ? -1.f : x; });
    case UnaryOp::Reciprocal: return map1<float, float>(a, out, [](float x) { return 1.f / x; });
    case UnaryOp::Exp: return m([](float x) { return std::exp(x); });
    case UnaryOp::Log: return m([](float x) { return std::log(x); });
    case UnaryOp::Sqrt: return m([](float x) { return std::sqrt(x); });
    case UnaryOp::Rsqrt: return m([](float x) { return 1.f / std::sqrt(x); });
    case UnaryOp::Tanh: return m([](float x) { return std::tanh(x); });
    case UnaryOp::Sigmoid:
      // Written so that neither branch overflows: exp of a non-positive number only.
      return m([](float x) {
        if (x >= 0.f) return 1.f / (1.f + std::exp(-x));
        float e = std::exp(x);
        return e / (1.f + e);
      });
    case UnaryOp::Gelu:
      // Unit-stride runs go through the vectorised GELU of the GEMM epilogue.
      return parallel_runs<2>(out.shape, {&out.strides, &a.strides}, kMathGrain,
                              [&](int64_t n, const std::array<int64_t, 2>& off, const std::array<int64_t, 2>& st) {
                                float* o = out.data<float>() + off[0];
                                const float* x = a.data<float>() + off[1];
                                if (st[0] == 1 && st[1] == 1) {
                                  gemm::gelu_forward(x, o, n);
                                } else {
                                  for (int64_t i = 0; i < n; ++i) o[i * st[0]] = gemm::gelu(x[i * st[1]]);
                                }
                              });
    case UnaryOp::Silu:
      return m([](float x) {
        if (x >= 0.f) return x / (1.f + std::exp(-x));
        float e = std::exp(x);
        return x * e / (1.f + e);
      });
    case UnaryOp::Sin: return m([](float x) { return std::sin(x); });
    case UnaryOp::Cos: return m([](float x) { return std::cos(x); });
    case UnaryOp::Floor: return map1<float, float>(a, out, [](float x) { return std::floor(x); });
    case UnaryOp::Ceil: return map1<float, float>(a, out, [](float x) { return std::ceil(x); });
    case UnaryOp::Round: return map1<float, float>(a, out, [](float x) { return std::nearbyint(x); });
    case UnaryOp::Log1p: return m([](float x) { return std::log1p(x); });
    case UnaryOp::Expm1: return m([](float x) { return std::expm1(x); });
    case UnaryOp::Erf: return m([](float x) { return std::erf(x); });
  }
}

template <typename T>
void unary_integer(UnaryOp op, const Tensor& a, const Tensor& out) {
  using W = uint32_t;
  switch (op) {
    case UnaryOp::Neg: return map1<T, T>(a, out, [](T x) { return T(W(0) - W(x)); });
    case UnaryOp::Abs: return map1<T, T>(a, out, [](T x) { return x < 0 ? T(W(0) - W(x)) : x; });
    case UnaryOp::Square: return map1<T, T>(a, out, [](T x) { return T(W(x) * W(x)); });
    case UnaryOp::Relu: return map1<T, T>(a, out, [](T x) { return x > 0 ? x : T(0); });
    case UnaryOp::Sign: return map1<T, T>(a, out, [](T x) { return T(x > 0 ? 1 : x < 0 ? -1 : 0); });
    case UnaryOp::Floor:
    case UnaryOp::Ceil:
    case UnaryOp::Round: return map1<T, T>(a, out, [](T x) { return x; });
    default: fail(Code::Internal, "integer unary op reached the kernel");
  }
}

}  // namespace

void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_dtype(a.dtype, [&](auto tag) { binary_typed<decltype(tag)>(op, a, b, out); });
}

void unary(UnaryOp op, const Tensor& a, const Tensor& out) {
  if (a.dtype == DType::Float32) return unary_float(op, a, out);
  dispatch_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_floating_point_v<T>) unary_integer<T>(op, a, out);
  });
}

void clamp(const Tensor& a, double lo, double hi, const Tensor& out) {
  dispatch_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    bool has_lo = !std::isnan(lo), has_hi = !std::isnan(hi);
    T l = has_lo ? convert_value<T>(lo) : T(0), h = has_hi ? convert_value<T>(hi) : T(0);
    map1<T, T>(a, out, [=](T x) {
      if (has_lo && x < l) x = l;
      if (has_hi && x > h) x = h;
      return x;
    });
  });
}

void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    const uint8_t* pc = cond.data<uint8_t>();
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* po = out.data<T>();
    parallel_runs<4>(out.shape, {&out.strides, &cond.strides, &a.strides, &b.strides}, kElementwiseGrain,
                     [&](int64_t n, const std::array<int64_t, 4>& off, const std::array<int64_t, 4>& st) {
                       for (int64_t i = 0; i < n; ++i) {
                         po[off[0] + i * st[0]] =
                             pc[off[1] + i * st[1]] ? pa[off[2] + i * st[2]] : pb[off[3] + i * st[3]];
                       }
                     });
  });
}

void fill(const Tensor& out, double value) {
  dispatch_dtype(out.dtype, [&](auto tag) {
    using T = decltype(tag);
    T v = convert_value<T>(value);
    T* po = out.data<T>();
    parallel_runs<1>(out.shape, {&out.strides}, kElementwiseGrain,
                     [&](int64_t n, const std::array<int64_t, 1>& off, const std::array<int64_t, 1>& st) {
                       for (int64_t i = 0; i < n; ++i) po[off[0] + i * st[0]] = v;
                     });
  });
}

void copy_cast(const Tensor& src, const Tensor& dst) {
  dispatch_dtype(src.dtype, [&](auto src_tag) {
    dispatch_dtype(dst.dtype, [&](auto dst_tag) {
      using S = decltype(src_tag);
      using D = decltype(dst_tag);
      map1<S, D>(src, dst, [](S x) { return convert_value<D>(x); });
    });
  });
}

}  // namespace joule::kernels
