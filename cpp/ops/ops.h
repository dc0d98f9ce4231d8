// The tensor operations. Each validates its arguments (throwing joule::Error with a stable code),
// works out shapes and dtypes, allocates the result and dispatches to the CPU kernels or to CUDA.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace joule::ops {

enum class BinaryOp { Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge };
enum class UnaryOp {
  Neg, Abs, Exp, Log, Sqrt, Rsqrt, Tanh, Sigmoid, Relu, Gelu, Silu, Sign, Square, Reciprocal,
  Sin, Cos, Floor, Ceil, Round, Log1p, Expm1, Erf
};
enum class ReduceOp { Sum, Mean, Max, Min, Prod, ArgMax, ArgMin };

BinaryOp parse_binary(const std::string& name);
UnaryOp parse_unary(const std::string& name);
ReduceOp parse_reduce(const std::string& name);
const char* reduce_name(ReduceOp op);  // "sum", "argmax", ...
bool is_comparison(BinaryOp op);

// ---- creation ----
Tensor full(const Shape& shape, double value, DType dtype, Device device);
Tensor arange(double start, double end, double step, DType dtype, Device device);
Tensor linspace(double start, double end, int64_t steps, DType dtype, Device device);
Tensor eye(int64_t rows, int64_t cols, DType dtype, Device device);
Tensor from_host(const void* data, size_t bytes, const Shape& shape, DType dtype, Device device);
void to_host(const Tensor& t, void* dst, size_t bytes);  // the elements in row-major order

// ---- random: a counter-based generator (Philox 4x32-10), the same numbers on every machine ----
void manual_seed(uint64_t seed);
struct RngState {
  uint64_t seed;
  uint64_t offset;
};
RngState rng_state();
void set_rng_state(RngState state);
Tensor rand(const Shape& shape, Device device);                      // uniform [0, 1)
Tensor randn(const Shape& shape, Device device);                     // standard normal
Tensor randint(int64_t low, int64_t high, const Shape& shape, Device device);  // int32 in [low, high)
Tensor bernoulli_mask(const Shape& shape, double keep, Device device);  // float32 0/1 with P(1) = keep

// ---- views and copies ----
Tensor reshape(const Tensor& t, const Shape& shape);  // a view when the strides allow, else a copy
Tensor view(const Tensor& t, const Shape& shape);     // a view, or SHAPE_MISMATCH
Tensor permute(const Tensor& t, const std::vector<int64_t>& order);
Tensor transpose(const Tensor& t, int64_t a, int64_t b);
Tensor slice(const Tensor& t, int64_t axis, int64_t start, int64_t end, int64_t step);
Tensor select(const Tensor& t, int64_t axis, int64_t index);
Tensor expand(const Tensor& t, const Shape& shape);
Tensor squeeze(const Tensor& t, const std::vector<int64_t>& axes);  // empty: every size-1 axis
Tensor unsqueeze(const Tensor& t, int64_t axis);
Tensor contiguous(const Tensor& t);  // t itself when already contiguous
Tensor clone(const Tensor& t);
Tensor cast(const Tensor& t, DType dtype);  // float -> int truncates toward zero and saturates
Tensor to_device(const Tensor& t, Device device);
void copy_into(const Tensor& dst, const Tensor& src);  // src broadcast to dst's shape
Tensor concat(const std::vector<Tensor>& parts, int64_t axis);

// ---- elementwise, with NumPy broadcasting ----
Shape broadcast_shapes(const Shape& a, const Shape& b);
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor binary_scalar(BinaryOp op, const Tensor& a, double scalar, bool scalar_first);
void binary_inplace(BinaryOp op, const Tensor& a, const Tensor& b);  // a = a op b
void binary_scalar_inplace(BinaryOp op, const Tensor& a, double scalar);
Tensor unary(UnaryOp op, const Tensor& a);
void unary_inplace(UnaryOp op, const Tensor& a);
Tensor clamp(const Tensor& a, double lo, double hi);  // NaN bound = unbounded
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
void fill(const Tensor& t, double value);

// ---- reductions; empty axes = all axes ----
Tensor reduce(ReduceOp op, const Tensor& a, const std::vector<int64_t>& axes, bool keep_dims);
Tensor variance(const Tensor& a, const std::vector<int64_t>& axes, int64_t correction, bool keep_dims);
Tensor logsumexp(const Tensor& a, const std::vector<int64_t>& axes, bool keep_dims);
Tensor softmax(const Tensor& a, int64_t axis);
Tensor log_softmax(const Tensor& a, int64_t axis);

// ---- linear algebra ----
// NumPy matmul semantics: 1-D operands are promoted and squeezed, batch dimensions broadcast.
Tensor matmul(const Tensor& a, const Tensor& b);

// The process-wide precision of float32 GEMMs on CUDA (torch.set_float32_matmul_precision):
// Highest = exact fp32 (the default), High = TF32 tensor cores, Medium = BF16 tensor cores, all
// accumulating in fp32. The CPU GEMM is always exact fp32: there the setting has no effect.
enum class MatmulPrecision { Highest, High, Medium };
void set_matmul_precision(MatmulPrecision precision);
MatmulPrecision matmul_precision();
MatmulPrecision parse_matmul_precision(const std::string& name);  // 'highest' | 'high' | 'medium', else INVALID_ARGUMENT
const char* matmul_precision_name(MatmulPrecision precision);

// ---- indexing (int32 indices; out of range is INVALID_ARGUMENT) ----
Tensor index_select(const Tensor& a, int64_t axis, const Tensor& index);
Tensor gather(const Tensor& a, int64_t axis, const Tensor& index);
Tensor scatter_add(const Tensor& a, int64_t axis, const Tensor& index, const Tensor& src);
// a with src's slices added at 1-D `index` along axis (indexSelect's gradient; repeats accumulate).
Tensor index_add(const Tensor& a, int64_t axis, const Tensor& index, const Tensor& src);

}  // namespace joule::ops
