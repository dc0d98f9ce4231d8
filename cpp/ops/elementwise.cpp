#include <cmath>
#include <optional>

#include "core/flops.h"
#include "kernels/cpu.h"
#include "ops/ops.h"
#include "ops/util.h"

namespace joule::ops {
namespace {

bool keeps_integer_type(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg:
    case UnaryOp::Abs:
    case UnaryOp::Square:
    case UnaryOp::Relu:
    case UnaryOp::Sign:
    case UnaryOp::Floor:
    case UnaryOp::Ceil:
    case UnaryOp::Round: return true;
    default: return false;
  }
}

// The dtype the operands are computed in.
DType compute_dtype(BinaryOp op, DType a, DType b) {
  if (op == BinaryOp::Div || op == BinaryOp::Pow) return DType::Float32;
  return promote(a, b);
}

// A scalar is "weak", as in PyTorch: it does not widen an integer tensor unless it has a fraction.
DType scalar_dtype(double s) {
  return std::isfinite(s) && s == std::floor(s) && std::fabs(s) < 2147483648.0 ? DType::Int32 : DType::Float32;
}

DType with_scalar(BinaryOp op, DType tensor, double scalar) {
  DType widened = promote(tensor, scalar_dtype(scalar)) == DType::Float32 ? DType::Float32 : tensor;
  return compute_dtype(op, widened, widened);
}

void require_not_overlapping(const Tensor& t, const char* op) {
  for (int64_t d = 0; d < t.dim(); ++d) {
    JOULE_CHECK(t.shape[d] <= 1 || t.strides[d] != 0, Code::InvalidArgument, op,
          ": cannot write in place into an expanded (broadcast) view; clone() it first");
  }
}

void run_binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  flops::add(static_cast<uint64_t>(out.numel()));
  // Operands already of the output's shape need no broadcast view (the common case, and the
  // views' allocations are a visible share of a small op's cost).
  const bool a_fits = a.shape == out.shape, b_fits = b.shape == out.shape;
  std::optional<Tensor> ea, eb;
  if (!a_fits) ea = expand(a, out.shape);
  if (!b_fits) eb = expand(b, out.shape);
  const Tensor& x = a_fits ? a : *ea;
  const Tensor& y = b_fits ? b : *eb;
  if (out.device().is_cpu()) {
    kernels::binary(op, x, y, out);
  } else {
    cuda::binary(op, x, y, out);
  }
}

Tensor scalar_like(double s, DType dtype, Device device) { return full({}, s, dtype, device); }

}  // namespace

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t x = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t y = i < n - b.size() ? 1 : b[i - (n - b.size())];
    JOULE_CHECK(x == y || x == 1 || y == 1, Code::ShapeMismatch, "shapes ", shape_str(a), " and ", shape_str(b),
          " cannot be broadcast together (dimension ", i, ": ", x, " vs ", y, ")");
    out[i] = x == 1 ? y : x;
  }
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  require_same_device(a, b, "binary op");
  Shape shape = broadcast_shapes(a.shape, b.shape);
  DType dt = compute_dtype(op, a.dtype, b.dtype);
  Tensor out = empty(shape, is_comparison(op) ? DType::UInt8 : dt, a.device());
  if (a.dtype == dt && b.dtype == dt) {
    run_binary(op, a, b, out);
  } else {
    run_binary(op, cast(a, dt), cast(b, dt), out);
  }
  return out;
}

Tensor binary_scalar(BinaryOp op, const Tensor& a, double scalar, bool scalar_first) {
  DType dt = with_scalar(op, a.dtype, scalar);
  Tensor s = scalar_like(scalar, dt, a.device());
  Tensor ca = cast(a, dt);
  Tensor out = empty(a.shape, is_comparison(op) ? DType::UInt8 : dt, a.device());
  if (scalar_first) run_binary(op, s, ca, out); else run_binary(op, ca, s, out);
  return out;
}

void binary_inplace(BinaryOp op, const Tensor& a, const Tensor& b) {
  require_same_device(a, b, "in-place binary op");
  JOULE_CHECK(!is_comparison(op), Code::InvalidArgument, "comparisons have no in-place form");
  Shape shape = broadcast_shapes(a.shape, b.shape);
  JOULE_CHECK(shape == a.shape, Code::ShapeMismatch, "in-place op: the result shape ", shape_str(shape),
        " differs from the target's ", shape_str(a.shape));
  DType dt = compute_dtype(op, a.dtype, b.dtype);
  JOULE_CHECK(dt == a.dtype, Code::Dtype, "in-place op: the result would be ", dtype_name(dt), " but the target is ",
        dtype_name(a.dtype));
  require_not_overlapping(a, "in-place op");
  // b may be a view of a's storage (a.add_(a.t())): read it in full before a is written.
  run_binary(op, a, b.storage == a.storage ? clone(cast(b, dt)) : cast(b, dt), a);
}

void binary_scalar_inplace(BinaryOp op, const Tensor& a, double scalar) {
  JOULE_CHECK(!is_comparison(op), Code::InvalidArgument, "comparisons have no in-place form");
  DType dt = with_scalar(op, a.dtype, scalar);
  JOULE_CHECK(dt == a.dtype, Code::Dtype, "in-place op: the result would be ", dtype_name(dt), " but the target is ",
        dtype_name(a.dtype));
  require_not_overlapping(a, "in-place op");
  run_binary(op, a, scalar_like(scalar, dt, a.device()), a);
}

Tensor unary(UnaryOp op, const Tensor& a) {
  Tensor ca = keeps_integer_type(op) ? a : cast(a, DType::Float32);
  Tensor out = empty(ca.shape, ca.dtype, ca.device());
  flops::add(static_cast<uint64_t>(out.numel()));
  if (out.device().is_cpu()) kernels::unary(op, ca, out); else cuda::unary(op, ca, out);
  return out;
}

void unary_inplace(UnaryOp op, const Tensor& a) {
  JOULE_CHECK(keeps_integer_type(op) || a.dtype == DType::Float32, Code::Dtype, "in-place op: the result would be float32 ",
        "but the target is ", dtype_name(a.dtype));
  require_not_overlapping(a, "in-place op");
  if (a.device().is_cpu()) kernels::unary(op, a, a); else cuda::unary(op, a, a);
}

Tensor clamp(const Tensor& a, double lo, double hi) {
  JOULE_CHECK(std::isnan(lo) || std::isnan(hi) || lo <= hi, Code::InvalidArgument, "clamp: expected min <= max, got ", lo,
        " and ", hi);
  bool fractional = (!std::isnan(lo) && scalar_dtype(lo) == DType::Float32) ||
                    (!std::isnan(hi) && scalar_dtype(hi) == DType::Float32);
  Tensor ca = fractional ? cast(a, DType::Float32) : a;
  Tensor out = empty(ca.shape, ca.dtype, ca.device());
  if (out.device().is_cuda()) cuda::clamp(ca, lo, hi, out); else kernels::clamp(ca, lo, hi, out);
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  require_same_device(cond, a, "where");
  require_same_device(a, b, "where");
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape, a.shape), b.shape);
  DType dt = promote(a.dtype, b.dtype);
  // The CUDA kernel tests cond != 0 for any dtype itself (the same rule as the comparison here).
  Tensor c = cond.dtype == DType::UInt8 || cond.device().is_cuda() ? cond : binary_scalar(BinaryOp::Ne, cond, 0, false);
  Tensor out = empty(shape, dt, a.device());
  if (out.device().is_cuda()) {
    cuda::where(expand(c, shape), expand(cast(a, dt), shape), expand(cast(b, dt), shape), out);
  } else {
    kernels::where(expand(c, shape), expand(cast(a, dt), shape), expand(cast(b, dt), shape), out);
  }
  return out;
}

void fill(const Tensor& t, double value) {
  JOULE_CHECK(!std::isnan(value) || t.dtype == DType::Float32, Code::InvalidArgument,
        "fill: NaN cannot be stored in an integer tensor");
  require_not_overlapping(t, "fill");
  if (t.device().is_cpu()) kernels::fill(t, value);
  else if (t.dtype == DType::Float32) cuda::fill(t, static_cast<float>(value));
  else cuda::fill_value(t, value);
}

}  // namespace joule::ops
