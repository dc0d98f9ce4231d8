// Bindings of the composed decoder step (cpp/ops/decoder.h). A decoder is built once per
// generation from a plain description of the model's tensors and kept as a type-tagged
// External; each step is then one call. The decoder holds references to the tensors it was
// built from, so decoderRelease() (or, as a safety net, the garbage collector) lets them go.
#include <memory>
#include <string>

#include "napi/convert.h"
#include "napi/handle.h"
#include "napi/registry.h"
#include "ops/decoder.h"

namespace joule::napi {
namespace {

using Info = const Napi::CallbackInfo&;

// "jouledec" "oder-obj": marks the externals that hold a decoder.
constexpr napi_type_tag kDecoderTag = {0x6a6f756c65646563ULL, 0x6f6465722d6f626aULL};

struct DecoderBox {
  std::unique_ptr<ops::Decoder> decoder;
};

Napi::Value property(const Napi::Object& o, const char* key, const std::string& where) {
  Napi::Value v = o.Get(key);
  JOULE_CHECK(!v.IsUndefined(), Code::InvalidArgument, "decoderCreate: ", where, " has no '", key, "'");
  return v;
}

Napi::Object object_at(const Napi::Object& o, const char* key, const std::string& where) {
  Napi::Value v = property(o, key, where);
  JOULE_CHECK(v.IsObject(), Code::InvalidArgument, "decoderCreate: expected ", where, ".", key, " to be an object");
  return v.As<Napi::Object>();
}

std::optional<Tensor> optional_tensor(const Napi::Object& o, const char* key, const std::string& where) {
  Napi::Value v = o.Get(key);
  if (v.IsNull() || v.IsUndefined()) return std::nullopt;
  TensorHandle* h = TensorHandle::unwrap(v);
  JOULE_CHECK(h != nullptr, Code::InvalidArgument, "decoderCreate: expected ", where, ".", key, " to be a tensor");
  JOULE_CHECK(h->tensor().has_value(), Code::Disposed, "decoderCreate: ", where, ".", key, " was disposed");
  return *h->tensor();
}

Tensor tensor(const Napi::Object& o, const char* key, const std::string& where) {
  std::optional<Tensor> t = optional_tensor(o, key, where);
  JOULE_CHECK(t.has_value(), Code::InvalidArgument, "decoderCreate: ", where, " has no tensor '", key, "'");
  return *t;
}

double number(const Napi::Object& o, const char* key, const std::string& where, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  JOULE_CHECK(v.IsNumber(), Code::InvalidArgument, "decoderCreate: expected ", where, ".", key, " to be a number");
  return v.As<Napi::Number>().DoubleValue();
}

ops::DecoderNorm norm(const Napi::Object& o, const char* key, const std::string& where) {
  Napi::Object n = object_at(o, key, where);
  const std::string at = where + "." + key;
  return {optional_tensor(n, "weight", at), optional_tensor(n, "bias", at), number(n, "eps", at, 1e-5)};
}

// {weight, bias} (float32) or {packed, colSums, wScale, bias, inputScale, outlierThreshold} (int8).
ops::DecoderLinear linear(const Napi::Object& o, const char* key, const std::string& where) {
  Napi::Object l = object_at(o, key, where);
  const std::string at = where + "." + key;
  ops::DecoderLinear out;
  out.weight = optional_tensor(l, "weight", at);
  out.packed = optional_tensor(l, "packed", at);
  out.col_sums = optional_tensor(l, "colSums", at);
  out.w_scale = optional_tensor(l, "wScale", at);
  out.bias = optional_tensor(l, "bias", at);
  out.input_scale = number(l, "inputScale", at, 0);
  out.outlier_threshold = number(l, "outlierThreshold", at, 0);
  return out;
}

// (spec) -> decoder; spec = {heads, causal, tokenEmbedding, positionEmbedding, finalNorm, lmHead,
// layers: [{ln1, ln2, qkv, proj, fc1, fc2, cacheK, cacheV}]}
Napi::Value decoder_create(Info info) {
  return guard(info, [&]() -> Napi::Value {
    Napi::Value v = arg(info, 0, "spec");
    JOULE_CHECK(v.IsObject(), Code::InvalidArgument, "decoderCreate: expected a model description object");
    Napi::Object spec = v.As<Napi::Object>();
    auto d = std::make_unique<ops::Decoder>();
    d->token_embedding = tensor(spec, "tokenEmbedding", "spec");
    d->position_embedding = tensor(spec, "positionEmbedding", "spec");
    const double heads = number(spec, "heads", "spec", 0);
    JOULE_CHECK(heads >= 1 && heads == static_cast<double>(static_cast<int64_t>(heads)), Code::InvalidArgument,
                "decoderCreate: expected spec.heads to be a positive integer, got ", heads);
    d->heads = static_cast<int64_t>(heads);
    Napi::Value causal = spec.Get("causal");
    d->causal = causal.IsUndefined() ? true : causal.ToBoolean().Value();
    d->final_norm = norm(spec, "finalNorm", "spec");
    d->lm_head = linear(spec, "lmHead", "spec");
    Napi::Value layers_value = property(spec, "layers", "spec");
    JOULE_CHECK(layers_value.IsArray(), Code::InvalidArgument, "decoderCreate: expected spec.layers to be an array");
    Napi::Array layers = layers_value.As<Napi::Array>();
    for (uint32_t i = 0; i < layers.Length(); ++i) {
      const std::string at = "spec.layers[" + std::to_string(i) + "]";
      Napi::Value lv = layers.Get(i);
      JOULE_CHECK(lv.IsObject(), Code::InvalidArgument, "decoderCreate: expected ", at, " to be an object");
      Napi::Object l = lv.As<Napi::Object>();
      ops::DecoderLayer layer;
      layer.ln1 = norm(l, "ln1", at);
      layer.ln2 = norm(l, "ln2", at);
      layer.qkv = linear(l, "qkv", at);
      layer.proj = linear(l, "proj", at);
      layer.fc1 = linear(l, "fc1", at);
      layer.fc2 = linear(l, "fc2", at);
      layer.cache_k = tensor(l, "cacheK", at);
      layer.cache_v = tensor(l, "cacheV", at);
      d->layers.push_back(std::move(layer));
    }
    ops::validate_decoder(*d);
    auto* box = new DecoderBox{std::move(d)};
    auto ext = Napi::External<DecoderBox>::New(info.Env(), box, [](Napi::Env, DecoderBox* b) { delete b; });
    NAPI_THROW_IF_FAILED(info.Env(), napi_type_tag_object(info.Env(), ext, &kDecoderTag), Napi::Value());
    return ext;
  });
}

DecoderBox& box_at(Info info, size_t i) {
  Napi::Value v = arg(info, i, "decoder");
  bool tagged = false;
  JOULE_CHECK(v.IsExternal() && napi_check_object_type_tag(info.Env(), v, &kDecoderTag, &tagged) == napi_ok && tagged,
              Code::InvalidArgument, "expected a decoder made by decoderCreate");
  return *v.As<Napi::External<DecoderBox>>().Data();
}

// (decoder, ids int32 [B, T], start) -> logits [B, vocab]
Napi::Value decoder_step(Info info) {
  return guard(info, [&]() -> Napi::Value {
    DecoderBox& box = box_at(info, 0);
    JOULE_CHECK(box.decoder != nullptr, Code::Disposed, "decoderStep: the decoder was released");
    return TensorHandle::wrap(info.Env(), ops::decoder_step(*box.decoder, to_tensor(info, 1, "ids"),
                                                            to_int(info, 2, "start")));
  });
}

// (decoder) -> undefined: drops its references to the model's tensors and caches now.
Napi::Value decoder_release(Info info) {
  return guard(info, [&]() -> Napi::Value {
    box_at(info, 0).decoder.reset();
    return info.Env().Undefined();
  });
}

}  // namespace

std::vector<Binding> decoder_bindings() {
  return {
      {"decoderCreate", decoder_create},
      {"decoderStep", decoder_step},
      {"decoderRelease", decoder_release},
  };
}

}  // namespace joule::napi
