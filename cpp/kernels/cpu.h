// CPU kernels. Operands arrive with their final shapes (inputs already broadcast by
// zero strides) and dtypes; the ops layer has done every check.
#pragma once
#include "core/tensor.h"
#include "ops/ops.h"

namespace joule::kernels {

void binary(ops::BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);
void unary(ops::UnaryOp op, const Tensor& a, const Tensor& out);
void clamp(const Tensor& a, double lo, double hi, const Tensor& out);
void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out);
void fill(const Tensor& out, double value);
void copy_cast(const Tensor& src, const Tensor& dst);  // any dtypes, any strides, same shape

// Reduce the dims of `a` whose `reduced[d]` is true; out has the kept dims in order.
void reduce(ops::ReduceOp op, const Tensor& a, const std::vector<bool>& reduced, const Tensor& out);
// Softmax / log-softmax over the last dimension of a contiguous float32 tensor.
void softmax_lastdim(const Tensor& a, const Tensor& out, bool log);

}  // namespace joule::kernels
