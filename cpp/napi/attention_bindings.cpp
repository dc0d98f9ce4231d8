// Bindings of the fused attention op (cpp/ops/attention.h).
#include <cmath>
#include <limits>

#include "napi/convert.h"
#include "napi/handle.h"
#include "napi/registry.h"
#include "ops/attention.h"

namespace joule::napi {
namespace {

using Info = const Napi::CallbackInfo&;

// null / undefined: the default 1/sqrt(D).
double optional_scale(Info info, size_t i) {
  Napi::Value v = arg(info, i, "scale");
  if (v.IsNull() || v.IsUndefined()) return std::numeric_limits<double>::quiet_NaN();
  double s = to_double(info, i, "scale");
  JOULE_CHECK(std::isfinite(s), Code::InvalidArgument, "attention: expected a finite scale, got ", s);
  return s;
}

// (q, k, v, causal, scale|null) -> [out, lse]
Napi::Value attention_forward(Info info) {
  return guard(info, [&]() -> Napi::Value {
    std::vector<Tensor> r = ops::attention_forward(to_tensor(info, 0, "q"), to_tensor(info, 1, "k"),
                                                   to_tensor(info, 2, "v"), to_bool(info, 3, "causal"),
                                                   optional_scale(info, 4));
    Napi::Array a = Napi::Array::New(info.Env(), 2);
    a.Set(0u, TensorHandle::wrap(info.Env(), r[0]));
    a.Set(1u, TensorHandle::wrap(info.Env(), r[1]));
    return a;
  });
}

// (dout, q, k, v, out, lse, causal, scale|null, dqInto|null, dkInto|null, dvInto|null) -> [dq, dk, dv]
Napi::Value attention_backward(Info info) {
  return guard(info, [&]() -> Napi::Value {
    ops::AttentionGrads g = ops::attention_backward(
        to_tensor(info, 0, "grad"), to_tensor(info, 1, "q"), to_tensor(info, 2, "k"), to_tensor(info, 3, "v"),
        to_tensor(info, 4, "out"), to_tensor(info, 5, "lse"), to_bool(info, 6, "causal"), optional_scale(info, 7),
        to_optional_tensor(info, 8, "dqInto"), to_optional_tensor(info, 9, "dkInto"), to_optional_tensor(info, 10, "dvInto"));
    Napi::Array a = Napi::Array::New(info.Env(), 3);
    uint32_t k = 0;
    for (const auto* t : {&g.dq, &g.dk, &g.dv}) a.Set(k++, *t ? TensorHandle::wrap(info.Env(), **t) : info.Env().Null());
    return a;
  });
}

// (qkv, cacheK, cacheV, length, heads, causal, scale|null) -> out [B, T, C]
Napi::Value attention_qkv_cached(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return TensorHandle::wrap(info.Env(), ops::attention_qkv_cached(
        to_tensor(info, 0, "qkv"), to_tensor(info, 1, "cacheK"), to_tensor(info, 2, "cacheV"), to_int(info, 3, "length"),
        to_int(info, 4, "heads"), to_bool(info, 5, "causal"), optional_scale(info, 6)));
  });
}

}  // namespace

std::vector<Binding> attention_bindings() {
  return {
      {"attentionQkvCached", attention_qkv_cached},
      {"attentionForward", attention_forward},
      {"attentionBackward", attention_backward},
  };
}

}  // namespace joule::napi
