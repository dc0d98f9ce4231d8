// Fused scaled-dot-product attention: softmax(q k^T * scale [+ causal mask]) v, without ever
// materialising the score matrix (see kernels/attention.h).
#pragma once
#include <optional>
#include <vector>

#include "core/tensor.h"

namespace joule::ops {

// q [B, H, Tq, D], k and v [B, H, Tk, D] (any strides; a head dim that is not unit-stride is
// copied). scale NaN means 1/sqrt(D). causal: query i sees keys j <= i + Tk - Tq.
// Returns {out, lse}: out [B, H, Tq, D] as a view of a [B, Tq, H, D] buffer (so that
// out.transpose(1, 2) is contiguous), lse [B, H, Tq] (the per-row log-sum-exp, -inf for a row
// that sees no key). CPU and CUDA.
std::vector<Tensor> attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double scale);

// Gradients of attention_forward given dout (out's shape) and its saved out and lse.
// dq/dk/dv_into, when given, receive their gradient (overwritten; any strides with a unit-stride
// head dim) and nothing is returned for them. Returns {dq, dk, dv} (undefined Tensor when written
// into the given one). CPU and CUDA.
struct AttentionGrads {
  std::optional<Tensor> dq, dk, dv;
};
AttentionGrads attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& out, const Tensor& lse, bool causal, double scale,
                                  const std::optional<Tensor>& dq_into, const std::optional<Tensor>& dk_into,
                                  const std::optional<Tensor>& dv_into);

// Inference on a KV cache in one call: qkv [B, T, 3 * H * D] (the fused projection of T new
// positions), cache_k / cache_v [B, H, capacity, D]. Copies the new keys and values into the caches
// at [length, length + T) and returns the attention of the new queries over positions
// [0, length + T) as [B, T, H * D]. CPU and CUDA (the kernel; the copies are strided copies).
Tensor attention_qkv_cached(const Tensor& qkv, const Tensor& cache_k, const Tensor& cache_v, int64_t length,
                            int64_t heads, bool causal, double scale);

}  // namespace joule::ops
