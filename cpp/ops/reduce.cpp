#include <algorithm>
#include <cmath>

#include "kernels/cpu.h"
#include "ops/ops.h"
#include "ops/util.h"

namespace joule::ops {
namespace {

std::vector<bool> reduced_mask(const Tensor& a, const std::vector<int64_t>& axes, const char* op) {
  std::vector<bool> mask(static_cast<size_t>(a.dim()), axes.empty());
  for (int64_t axis : axes) {
    int64_t d = normalize_axis(axis, a.dim(), op);
    if (a.dim() == 0) continue;
    JOULE_CHECK(!mask[d], Code::InvalidArgument, op, ": axis ", axis, " is given twice");
    mask[d] = true;
  }
  return mask;
}

Shape reduced_shape(const Tensor& a, const std::vector<bool>& mask, bool keep_dims) {
  Shape out;
  for (int64_t d = 0; d < a.dim(); ++d) {
    if (!mask[d]) out.push_back(a.shape[d]); else if (keep_dims) out.push_back(1);
  }
  return out;
}

}  // namespace

Tensor reduce(ReduceOp op, const Tensor& a, const std::vector<int64_t>& axes, bool keep_dims) {
  const char* name = reduce_name(op);
  std::vector<bool> mask = reduced_mask(a, axes, name);
  int64_t n_red = 1;
  for (int64_t d = 0; d < a.dim(); ++d) if (mask[d]) n_red *= a.shape[d];
  bool extreme = op == ReduceOp::Max || op == ReduceOp::Min || op == ReduceOp::ArgMax || op == ReduceOp::ArgMin;
  Shape out_shape = reduced_shape(a, mask, keep_dims);
  JOULE_CHECK(!(extreme && n_red == 0 && shape_numel(out_shape) > 0), Code::InvalidArgument, name,
        ": cannot reduce over an empty dimension (no identity)");
  Tensor src = op == ReduceOp::Mean ? cast(a, DType::Float32) : a;
  DType out_dtype = src.dtype;
  if (op == ReduceOp::ArgMax || op == ReduceOp::ArgMin) out_dtype = DType::Int32;
  if ((op == ReduceOp::Sum || op == ReduceOp::Prod) && !is_floating(src.dtype)) out_dtype = DType::Int32;
  Tensor out = empty(out_shape, out_dtype, a.device());
  if (shape_numel(out_shape) == 0) return out;
  if (n_red == 0) {
    fill(out, op == ReduceOp::Prod ? 1.0 : op == ReduceOp::Mean ? NAN : 0.0);
    return out;
  }
  if (a.device().is_cuda()) cuda::reduce(op, src, mask, out); else kernels::reduce(op, src, mask, out);
  return out;
}

Tensor variance(const Tensor& a, const std::vector<int64_t>& axes, int64_t correction, bool keep_dims) {
  JOULE_CHECK(correction >= 0, Code::InvalidArgument, "var: expected correction >= 0, got ", correction);
  Tensor x = cast(a, DType::Float32);
  std::vector<bool> mask = reduced_mask(x, axes, "var");
  int64_t n = 1;
  for (int64_t d = 0; d < x.dim(); ++d) if (mask[d]) n *= x.shape[d];
  Tensor mean = reduce(ReduceOp::Mean, x, axes, true);
  Tensor dev = unary(UnaryOp::Square, binary(BinaryOp::Sub, x, mean));
  Tensor sum = reduce(ReduceOp::Sum, dev, axes, keep_dims);
  // n - correction <= 0 gives inf or NaN, as in PyTorch.
  return binary_scalar(BinaryOp::Div, sum, static_cast<double>(n - correction), false);
}

Tensor logsumexp(const Tensor& a, const std::vector<int64_t>& axes, bool keep_dims) {
  Tensor x = cast(a, DType::Float32);
  std::vector<bool> reduced = reduced_mask(x, axes, "logsumexp");
  int64_t n_red = 1;
  for (int64_t d = 0; d < x.dim(); ++d) if (reduced[d]) n_red *= x.shape[d];
  if (n_red == 0) {  // the log of an empty sum, as in PyTorch (max would have no identity)
    Tensor out = reduce(ReduceOp::Sum, x, axes, keep_dims);
    fill(out, -INFINITY);
    return out;
  }
  Tensor m = reduce(ReduceOp::Max, x, axes, true);
  // Shift by the max for stability, but not by an infinite one (that would make NaN).
  if (m.device().is_cuda()) {
    cuda::zero_infinities(m);
  } else {
    float* pm = m.data<float>();
    for (int64_t i = 0; i < m.numel(); ++i) if (std::isinf(pm[i])) pm[i] = 0.f;
  }
  Tensor s = reduce(ReduceOp::Sum, unary(UnaryOp::Exp, binary(BinaryOp::Sub, x, m)), axes, true);
  Tensor out = binary(BinaryOp::Add, unary(UnaryOp::Log, s), m);
  if (keep_dims) return out;
  std::vector<int64_t> all;
  std::vector<bool> mask = reduced_mask(x, axes, "logsumexp");
  for (int64_t d = 0; d < x.dim(); ++d) if (mask[d]) all.push_back(d);
  return all.empty() ? out : squeeze(out, all);
}

namespace {
Tensor softmax_any(const Tensor& a, int64_t axis, bool log) {
  Tensor x = cast(a, DType::Float32);
  if (x.dim() == 0) x = unsqueeze(x, 0);
  int64_t d = normalize_axis(axis, x.dim(), log ? "logSoftmax" : "softmax");
  if (x.device().is_cuda()) {  // any axis in place: no transposed copies
    Tensor xc = contiguous(x);
    Tensor out = empty(xc.shape, DType::Float32, xc.device());
    cuda::softmax(xc, out, d, log);
    return a.dim() == 0 ? squeeze(out, {}) : out;
  }
  int64_t last = x.dim() - 1;
  Tensor moved = contiguous(transpose(x, d, last));
  Tensor out = empty(moved.shape, DType::Float32, moved.device());
  kernels::softmax_lastdim(moved, out, log);
  Tensor back = contiguous(transpose(out, d, last));
  return a.dim() == 0 ? squeeze(back, {}) : back;
}
}  // namespace

Tensor softmax(const Tensor& a, int64_t axis) { return softmax_any(a, axis, false); }
Tensor log_softmax(const Tensor& a, int64_t axis) { return softmax_any(a, axis, true); }

}  // namespace joule::ops
