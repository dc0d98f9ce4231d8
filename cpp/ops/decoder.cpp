#include "ops/decoder.h"

#include <cmath>
#include <limits>
#include <string>

#include "ops/attention.h"
#include "ops/nn.h"
#include "ops/ops.h"
#include "ops/quant.h"
#include "ops/util.h"

namespace joule::ops {
namespace {

constexpr const char* kOp = "decoder";

int64_t out_features(const DecoderLinear& l) { return l.weight ? l.weight->shape[0] : l.col_sums->shape[0]; }

Tensor apply(const DecoderLinear& l, const Tensor& x, gemm::Activation activation) {
  if (l.weight) return linear(x, *l.weight, l.bias, activation);
  return quant_linear(x, *l.packed, *l.col_sums, *l.w_scale, l.bias, activation, l.input_scale, l.outlier_threshold);
}

Tensor normalize(const Tensor& x, const DecoderNorm& n) { return layer_norm(x, n.weight, n.bias, n.eps)[0]; }

// A [n] float32 vector on `device`, or absent.
void check_vector(const std::optional<Tensor>& t, int64_t n, const Device& device, const std::string& what) {
  if (!t) return;
  JOULE_CHECK(t->dtype == DType::Float32 && t->dim() == 1 && t->shape[0] == n && t->device() == device,
              Code::ShapeMismatch, kOp, ": expected ", what, " to be float32 [", n, "] on ", device.name(), ", got ",
              dtype_name(t->dtype), " ", shape_str(t->shape), " on ", t->device().name());
}

void check_norm(const DecoderNorm& n, int64_t c, const Device& device, const std::string& what) {
  check_vector(n.weight, c, device, what + " weight");
  check_vector(n.bias, c, device, what + " bias");
  JOULE_CHECK(n.eps > 0 && std::isfinite(n.eps), Code::InvalidArgument, kOp, ": expected ", what,
              " eps > 0, got ", n.eps);
}

void check_linear(const DecoderLinear& l, int64_t in, int64_t out, const Device& device, const std::string& what) {
  const bool quantized = l.packed || l.col_sums || l.w_scale;
  JOULE_CHECK(l.weight.has_value() != quantized, Code::InvalidArgument, kOp, ": ", what,
              " needs either a float32 weight or a packed int8 weight with column sums and scales");
  if (l.weight) {
    const Tensor& w = *l.weight;
    JOULE_CHECK(w.dtype == DType::Float32 && w.dim() == 2 && w.shape[0] == out && w.shape[1] == in &&
                    w.device() == device,
                Code::ShapeMismatch, kOp, ": expected the ", what, " weight to be float32 [", out, ", ", in, "] on ",
                device.name(), ", got ", dtype_name(w.dtype), " ", shape_str(w.shape), " on ", w.device().name());
  } else {
    JOULE_CHECK(l.packed && l.col_sums && l.w_scale, Code::InvalidArgument, kOp, ": ", what,
                " (int8) needs the packed weight, its column sums and its scales");
    JOULE_CHECK(l.col_sums->dim() == 1 && l.col_sums->shape[0] == out && l.packed->dim() == 3 &&
                    l.packed->shape[1] == (in + 3) / 4 && l.packed->device() == device &&
                    l.col_sums->device() == device,
                Code::ShapeMismatch, kOp, ": the ", what, " int8 weight (packed ", shape_str(l.packed->shape),
                ", ", l.col_sums->shape.empty() ? 0 : l.col_sums->shape[0], " column sums) does not fit ", in,
                " -> ", out, " on ", device.name());
  }
  check_vector(l.bias, out, device, what + " bias");
}

}  // namespace

void validate_decoder(const Decoder& d) {
  const Tensor& wte = d.token_embedding;
  const Tensor& wpe = d.position_embedding;
  const Device device = wte.device();
  JOULE_CHECK(wte.dtype == DType::Float32 && wte.dim() == 2, Code::ShapeMismatch, kOp,
              ": expected the token embedding to be float32 [vocab, dim], got ", dtype_name(wte.dtype), " ",
              shape_str(wte.shape));
  const int64_t vocab = wte.shape[0], c = wte.shape[1];
  JOULE_CHECK(wpe.dtype == DType::Float32 && wpe.dim() == 2 && wpe.shape[1] == c && wpe.device() == device,
              Code::ShapeMismatch, kOp, ": expected the position embedding to be float32 [context, ", c, "] on ",
              device.name(), ", got ", dtype_name(wpe.dtype), " ", shape_str(wpe.shape));
  JOULE_CHECK(d.heads >= 1 && c % d.heads == 0, Code::InvalidArgument, kOp, ": dim ", c,
              " is not divisible by heads ", d.heads);
  const int64_t head_dim = c / d.heads;
  for (size_t i = 0; i < d.layers.size(); ++i) {
    const DecoderLayer& l = d.layers[i];
    const std::string at = "layer " + std::to_string(i) + " ";
    check_norm(l.ln1, c, device, at + "ln1");
    check_norm(l.ln2, c, device, at + "ln2");
    check_linear(l.qkv, c, 3 * c, device, at + "qkv");
    check_linear(l.proj, c, c, device, at + "proj");
    const int64_t hidden = out_features(l.fc1);
    check_linear(l.fc1, c, hidden, device, at + "fc1");
    check_linear(l.fc2, hidden, c, device, at + "fc2");
    for (const Tensor* cache : {&l.cache_k, &l.cache_v}) {
      JOULE_CHECK(cache->dtype == DType::Float32 && cache->dim() == 4 && cache->shape[1] == d.heads &&
                      cache->shape[3] == head_dim && cache->shape == d.layers[0].cache_k.shape &&
                      cache->device() == device,
                  Code::ShapeMismatch, kOp, ": expected the ", at, "caches to be float32 [batch, ", d.heads,
                  ", capacity, ", head_dim, "] like layer 0's, got ", dtype_name(cache->dtype), " ",
                  shape_str(cache->shape));
    }
  }
  check_norm(d.final_norm, c, device, "final norm");
  check_linear(d.lm_head, c, vocab, device, "lm head");
}

Tensor decoder_step(const Decoder& d, const Tensor& ids, int64_t start) {
  const Tensor& wte = d.token_embedding;
  JOULE_CHECK(ids.dtype == DType::Int32 && ids.dim() == 2 && ids.shape[1] >= 1, Code::InvalidArgument, kOp,
              ": expected int32 token ids [batch, positions >= 1], got ", dtype_name(ids.dtype), " ",
              shape_str(ids.shape));
  require_same_device(wte, ids, kOp);
  const int64_t b = ids.shape[0], t = ids.shape[1], c = wte.shape[1];
  int64_t capacity = d.position_embedding.shape[0];
  if (!d.layers.empty()) {
    const Tensor& cache = d.layers[0].cache_k;
    JOULE_CHECK(cache.shape[0] == b, Code::ShapeMismatch, kOp, ": ids hold ", b, " sequences, the caches ",
                cache.shape[0]);
    capacity = std::min(capacity, cache.shape[2]);
  }
  JOULE_CHECK(start >= 0 && start + t <= capacity, Code::InvalidArgument, kOp, ": positions ", start, "..",
              start + t - 1, " do not fit the context/cache of ", capacity);

  const Tensor tokens = reshape(index_select(wte, 0, reshape(ids, {b * t})), {b, t, c});
  const Tensor positions =
      index_select(d.position_embedding, 0,
                   arange(static_cast<double>(start), static_cast<double>(start + t), 1, DType::Int32, ids.device()));
  Tensor x = binary(BinaryOp::Add, tokens, positions);
  const double default_scale = std::numeric_limits<double>::quiet_NaN();
  for (const DecoderLayer& l : d.layers) {
    const Tensor qkv = apply(l.qkv, normalize(x, l.ln1), gemm::Activation::None);
    const Tensor a = attention_qkv_cached(qkv, l.cache_k, l.cache_v, start, d.heads, d.causal, default_scale);
    x = binary(BinaryOp::Add, x, apply(l.proj, a, gemm::Activation::None));
    const Tensor hidden = apply(l.fc1, normalize(x, l.ln2), gemm::Activation::Gelu);
    x = binary(BinaryOp::Add, x, apply(l.fc2, hidden, gemm::Activation::None));
  }
  return apply(d.lm_head, normalize(select(x, 1, t - 1), d.final_norm), gemm::Activation::None);
}

}  // namespace joule::ops
