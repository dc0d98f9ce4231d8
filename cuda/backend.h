// The CUDA side as the rest of Joule sees it. Built from cuda/*.cu when CUDA is compiled in;
// otherwise cpp/core/cuda_stub.cpp implements it and reports why CUDA is unavailable.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/attention.h"
#include "kernels/gemm/gemm.h"
#include "kernels/quant/quant.h"
#include "kernels/nn.h"
#include "ops/ops.h"

namespace joule::cuda {

struct BuildInfo {
  bool compiled = false;
  std::string architectures;  // e.g. "80-real;86-real;89-real;90"
  int runtime_version = 0;    // CUDART_VERSION, e.g. 13000
};
BuildInfo build_info();

int device_count();               // 0 when there is no usable GPU
std::string unavailable_reason(); // why device_count() is 0 ("" when it is not)
std::string device_name(int device);
void check_device(int device);    // throws DEVICE naming the reason when `device` cannot be used

// A caching allocator per device: freed blocks are kept and reused, never cudaFree'd per op.
void* device_malloc(int device, size_t bytes);
void device_free(int device, void* ptr, size_t bytes);
size_t cached_bytes(int device);
void release_cached();

// Work is queued on one stream per device; copies to the host wait for it.
void copy_to_device(int device, void* dst, const void* src, size_t bytes);
void copy_to_host(int device, void* dst, const void* src, size_t bytes);
void copy_on_device(int device, void* dst, const void* src, size_t bytes);
void synchronize(int device);

// The elementwise family (float32; operands broadcast to out's shape by zero strides).
void binary(ops::BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);
void unary(ops::UnaryOp op, const Tensor& a, const Tensor& out);
void fill(const Tensor& out, float value);
void copy_strided(const Tensor& src, const Tensor& dst);  // same dtype (float32), any strides

// Fused attention forward (cuda/attention.cu): the pointers in `a` are on `device`.
void attention_forward(const kernels::AttentionArgs& a, int device);
// Its backward (the CPU kernel's contract: dq/dk/dv overwritten); deterministic, no atomics.
void attention_backward(const kernels::AttentionArgs& a, int device);

// ---- reductions (cuda/reduce.cu); deterministic: fixed per-thread order, fixed trees, no atomics ----
// Reduce the dims of `a` whose reduced[d] is true into the contiguous `out` (the CPU kernel's contract:
// any dtype and strides; mean expects float32; the ops layer handles empty reductions).
void reduce(ops::ReduceOp op, const Tensor& a, const std::vector<bool>& reduced, const Tensor& out);
// Softmax / log-softmax of contiguous float32 x along `axis` into the contiguous out.
void softmax(const Tensor& x, const Tensor& out, int64_t axis, bool log);
// t[i] = 0 where t[i] is +-inf (contiguous float32): logsumexp's shift.
void zero_infinities(const Tensor& t);

// ---- indexing and casts (cuda/index.cu) ----
void copy_cast(const Tensor& src, const Tensor& dst);  // any dtypes, any strides, same shape; the CPU's rules
void fill_value(const Tensor& out, double value);      // any dtype, value converted as the CPU converts it
void clamp(const Tensor& a, double lo, double hi, const Tensor& out);  // NaN bound = none
void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out);  // cond: any dtype, != 0
// The position of the first entry of the contiguous int32 `index` outside [-size, size), its value in *value;
// -1 when every entry is valid. Synchronizes (the answer is read back).
int64_t first_invalid_index(const Tensor& index, int64_t size, int32_t* value);
// Indices already validated; out contiguous.
void index_select(const Tensor& a, int64_t axis, const Tensor& index, const Tensor& out);
void gather(const Tensor& a, int64_t axis, const Tensor& index, const Tensor& out);
// out (a contiguous clone of the input) += src at index along axis; deterministic (see index.cu).
void scatter_add(const Tensor& out, int64_t axis, const Tensor& index, const Tensor& src);

// ---- losses, layer norm, random numbers (cuda/nn.cu); pointers in the args are on `device` ----
// First position of a target that is neither ignore_index nor in [0, classes), its value in *value; -1 if none.
int64_t first_invalid_target(const Tensor& target, int64_t classes, int64_t ignore_index, int32_t* value);
// Writes lse[row] and either row_loss[row] (row_loss != null) or, into the device scalar *total, the sum of the
// row losses, divided by the rows not ignored when `mean`.
void cross_entropy_forward(const kernels::CrossEntropyArgs& a, int device, float* row_loss, float* lse, float* total,
                           bool mean);
// grad = k * (softmax - target'), k = row_scale[row] (row_scale != null) or *grad_scalar (a device scalar), divided
// by the rows not ignored when `mean`.
void cross_entropy_backward(const kernels::CrossEntropyArgs& a, int device, const float* lse, const float* row_scale,
                            const float* grad_scalar, bool mean, float* grad);
void layer_norm_forward(int device, const float* x, const float* gamma, const float* beta, int64_t rows, int64_t d,
                        double eps, float* y, float* mean, float* rstd);
void layer_norm_backward(int device, const float* dy, const float* x, const float* mean, const float* rstd,
                         const float* gamma, int64_t rows, int64_t d, float* dx, float* dgamma, float* dbeta);
// The CPU's Philox 4x32-10 streams, element i from counter first + i / 4: the same numbers as ops::rand & co.
enum class RandomKind { Uniform, Normal, Int, Bernoulli };
// Int: int32 in [low, high) with a = low, b = high - low; Bernoulli: a = keep probability; out contiguous.
void random_fill(RandomKind kind, const Tensor& out, uint64_t seed, uint64_t first, double a, double b);

// ---- fused optimizer steps (cuda/optim.cu): the CPU kernels' contracts (kernels/nn.h), one launch per tensor ----
void sgd_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& bufs,
              const std::vector<uint8_t>& init, const kernels::SgdHyper& h);
void adam_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& exp_avg,
               const std::vector<Tensor>& exp_avg_sq, const std::vector<Tensor>& max_exp_avg_sq,
               const std::vector<double>& steps, const kernels::AdamHyper& h);
double total_norm(const std::vector<Tensor>& ts, double p);  // synchronizes
void scale_inplace(const std::vector<Tensor>& ts, double factor);

// ---- GEMM (cuda/gemm.cu, cuda/gemm_int8.cu); every pointer in the args is on `device` ----
// The fp32 GEMM of kernels/gemm/gemm.h (any strides, alpha/beta, bias, activation) at `precision`.
void sgemm(const gemm::Sgemm& args, int device, ops::MatmulPrecision precision);
// `count` products; product i uses a + i * a_batch_stride, ... (elements).
void sgemm_strided_batched(const gemm::Sgemm& args, int64_t count, int64_t a_batch_stride, int64_t b_batch_stride,
                           int64_t c_batch_stride, int device, ops::MatmulPrecision precision);
// As gemm::sgemm_batched (host arrays of element offsets): one launch when the offsets are uniform.
void sgemm_batched(const gemm::Sgemm& args, int64_t count, const int64_t* a_offsets, const int64_t* b_offsets,
                   const int64_t* c_offsets, int device, ops::MatmulPrecision precision);
// linear's backward helpers, the contracts of kernels::activation_backward and kernels::column_sums.
void activation_backward(gemm::Activation activation, const float* dy, int64_t dy_rs, int64_t dy_cs,
                         const float* saved, float* dz, int64_t rows, int64_t cols, int device);
void column_sums(const float* z, int64_t rs, int64_t cs, int64_t rows, int64_t cols, float* out, bool accumulate,
                 int device);
// The int8 GEMM of kernels/quant/quant.h: A fp32 (quantized per row on the device, the reference's
// rounding) or int8 (any row stride); W in the packed layout of quant.h (w_col_sums is not used:
// CUDA multiplies signed by signed, no activation shift); C int32, or fp32 through the dequantizing
// epilogue. Auto picks mma.sync s8 tensor cores, or the dp4a kernel for few rows.
enum class Int8Kernel { Auto, TensorCore, Dp4a };
void qgemm(const quant::QGemm& args, int device, Int8Kernel kernel = Int8Kernel::Auto);

}  // namespace joule::cuda
