// Inference of a GPT-style decoder (pre-LayerNorm transformer blocks on per-layer KV caches)
// composed in C++: one call runs the new positions through the whole model. From JavaScript the
// same step is ~30 native calls per layer, each paying for handle wrapping, disposal and module
// code; a decode step of a small model is dominated by that (measured: ~1 ms per token at dim
// 128, of which ~0.25 ms is the ops themselves). The ops are the library's own (linear, int8
// linear, layer norm, cached attention), so results match the module-by-module forward.
#pragma once
#include <optional>
#include <vector>

#include "core/tensor.h"
#include "kernels/gemm/gemm.h"

namespace joule::ops {

// A Linear layer: float32 (weight [N, K]) or int8 (the packed weight, its column sums and
// weight scales of ops::quant_linear, with its input scale and outlier threshold).
struct DecoderLinear {
  std::optional<Tensor> weight;
  std::optional<Tensor> packed, col_sums, w_scale;
  double input_scale = 0, outlier_threshold = 0;
  std::optional<Tensor> bias;
};

struct DecoderNorm {
  std::optional<Tensor> weight, bias;
  double eps = 1e-5;
};

// x + proj(attention(qkv(ln1(x)))), then x + fc2(gelu(fc1(ln2(x)))). The caches are
// [B, heads, capacity, head dim], written at the step's positions.
struct DecoderLayer {
  DecoderNorm ln1, ln2;
  DecoderLinear qkv, proj, fc1, fc2;
  Tensor cache_k, cache_v;
};

struct Decoder {
  Tensor token_embedding;     // [vocab, C]
  Tensor position_embedding;  // [context, C]
  std::vector<DecoderLayer> layers;
  DecoderNorm final_norm;
  DecoderLinear lm_head;  // C -> vocab (GPT ties it to the token embedding)
  int64_t heads = 1;
  bool causal = true;
};

// Checks that the parts fit together (shapes, dtypes, one device): INVALID_ARGUMENT or
// SHAPE_MISMATCH naming the part otherwise. Called once when a decoder is built.
void validate_decoder(const Decoder& d);

// Runs token ids int32 [B, T] at positions [start, start + T) through the model on top of the
// caches (which receive the new keys and values) and returns the logits of the last position,
// [B, vocab]. The caller keeps the cache length (start + T after the call).
Tensor decoder_step(const Decoder& d, const Tensor& ids, int64_t start);

}  // namespace joule::ops
