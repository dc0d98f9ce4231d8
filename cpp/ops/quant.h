// int8 quantization ops (cpp/kernels/quant): argument checks, shapes and dtypes, then the kernels.
// Packed weights are ordinary tensors: packed bytes int8 [ceil(N/64), ceil(K/4), 256] plus their
// column sums int32 [N], so JavaScript owns them (dispose, tidy, memory()) and packing happens
// once per model.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/gemm/gemm.h"

namespace joule::ops {

// Quantization parameters per tensor (axis < 0) or per channel along `axis`: symmetric gives
// [scale] with scale = absmax / qmax; affine gives [scale, zero_point int32] covering [min(lo,0),
// max(hi,0)] with qmin..qmax. Non-finite input is INVALID_ARGUMENT.
std::vector<Tensor> quant_params(const Tensor& x, int64_t axis, bool symmetric, int64_t qmin, int64_t qmax);

// q = clamp(rne(x / scale) + zp, qmin, qmax) as int8 or uint8; scale (and zp) [] or [channels].
Tensor quantize(const Tensor& x, const Tensor& scale, const std::optional<Tensor>& zero_point, int64_t axis,
                int64_t qmin, int64_t qmax, DType dtype);
Tensor dequantize(const Tensor& q, const Tensor& scale, const std::optional<Tensor>& zero_point, int64_t axis);

// [packed, col_sums] of the int8 weight [N, K].
std::vector<Tensor> quant_pack_weight(const Tensor& w);
Tensor quant_unpack_weight(const Tensor& packed, int64_t n, int64_t k);

// y = act(dequant(quant(x) @ W^T) + bias): x fp32 [..., K], per-row dynamic activation scales (or
// input_scale > 0: one static scale), w_scale [N] (or [1]). outlier_threshold > 0: input columns
// (features) whose |x| exceeds it anywhere in the batch are computed in fp32 against the
// dequantized weight columns (LLM.int8() decomposition), the rest in int8.
Tensor quant_linear(const Tensor& x, const Tensor& packed, const Tensor& col_sums, const Tensor& w_scale,
                    const std::optional<Tensor>& bias, gemm::Activation activation, double input_scale,
                    double outlier_threshold);

// int8 A [M, K] times the packed weight: int32 [M, N] when a_scale is absent, else the fp32
// dequantized product with a_scale [M], w_scale [N], bias and activation.
Tensor quant_matmul_int8(const Tensor& a, const std::optional<Tensor>& a_scale, const Tensor& packed,
                         const Tensor& col_sums, const std::optional<Tensor>& w_scale,
                         const std::optional<Tensor>& bias, gemm::Activation activation);

// The scalar reference of both ops above on the plain int8 weight w [N, K]: a is fp32 (quantized
// per row, or with input_scale) or int8 (with a_scale, or int32 out when a_scale is absent).
Tensor quant_linear_reference(const Tensor& a, const std::optional<Tensor>& a_scale, const Tensor& w,
                              const std::optional<Tensor>& w_scale, const std::optional<Tensor>& bias,
                              gemm::Activation activation, double input_scale);

std::string quant_kernel_name();

}  // namespace joule::ops
