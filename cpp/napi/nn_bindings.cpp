// Bindings of the fused neural-network ops (cpp/ops/nn.h).
#include "napi/convert.h"
#include "napi/handle.h"
#include "napi/registry.h"
#include "ops/nn.h"

namespace joule::napi {
namespace {

using Info = const Napi::CallbackInfo&;

Napi::Value linear(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return TensorHandle::wrap(info.Env(), ops::linear(to_tensor(info, 0, "input"), to_tensor(info, 1, "weight"),
                                                      to_optional_tensor(info, 2, "bias"), to_activation(info, 3)));
  });
}

Napi::Value wrap_optional(Info info, const std::optional<Tensor>& t) {
  return t ? TensorHandle::wrap(info.Env(), *t) : info.Env().Null();
}

// Numbers of any count (to_ints caps its lists at 64 entries; parameter lists can be longer).
std::vector<double> to_numbers(Info info, size_t i, const char* name) {
  Napi::Value v = arg(info, i, name);
  JOULE_CHECK(v.IsArray(), Code::InvalidArgument, "expected an array of numbers for '", name, "'");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<double> out(a.Length());
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value e = a.Get(k);
    JOULE_CHECK(e.IsNumber() || e.IsBoolean(), Code::InvalidArgument, "expected only numbers in '", name, "' (entry ", k,
          " is not one)");
    out[k] = e.IsBoolean() ? (e.As<Napi::Boolean>().Value() ? 1.0 : 0.0) : e.As<Napi::Number>().DoubleValue();
  }
  return out;
}

Napi::Value linear_train(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return TensorHandle::wrap_all(info.Env(), ops::linear_train(to_tensor(info, 0, "input"), to_tensor(info, 1, "weight"),
                                            to_optional_tensor(info, 2, "bias"), to_activation(info, 3)));
  });
}

// (dy, x, w, saved|null, activation, needDx, needDw, needDb, dwInto|null, dbInto|null, accumulateDw,
//  accumulateDb) -> [dx, dw, db]
Napi::Value linear_backward(Info info) {
  return guard(info, [&]() -> Napi::Value {
    ops::LinearGrads g = ops::linear_backward(
        to_tensor(info, 0, "grad"), to_tensor(info, 1, "input"), to_tensor(info, 2, "weight"),
        to_optional_tensor(info, 3, "saved"), to_activation(info, 4), to_bool(info, 5, "needDx"),
        to_bool(info, 6, "needDw"), to_bool(info, 7, "needDb"), to_optional_tensor(info, 8, "dwInto"),
        to_optional_tensor(info, 9, "dbInto"), to_bool(info, 10, "accumulateDw"), to_bool(info, 11, "accumulateDb"));
    Napi::Array a = Napi::Array::New(info.Env(), 3);
    a.Set(0u, wrap_optional(info, g.dx));
    a.Set(1u, wrap_optional(info, g.dw));
    a.Set(2u, wrap_optional(info, g.db));
    return a;
  });
}

// (logits, target, labelSmoothing, ignoreIndex, reduction) -> [loss, lse]
Napi::Value cross_entropy(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return TensorHandle::wrap_all(info.Env(), ops::cross_entropy(to_tensor(info, 0, "logits"), to_tensor(info, 1, "target"),
                                             to_double(info, 2, "labelSmoothing"), to_int(info, 3, "ignoreIndex"),
                                             ops::parse_reduction(to_string(info, 4, "reduction"))));
  });
}

// (grad, logits, target, lse, labelSmoothing, ignoreIndex, reduction) -> gradient of the logits
Napi::Value cross_entropy_backward(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return TensorHandle::wrap(
        info.Env(), ops::cross_entropy_backward(to_tensor(info, 0, "grad"), to_tensor(info, 1, "logits"),
                                                to_tensor(info, 2, "target"), to_tensor(info, 3, "lse"),
                                                to_double(info, 4, "labelSmoothing"), to_int(info, 5, "ignoreIndex"),
                                                ops::parse_reduction(to_string(info, 6, "reduction"))));
  });
}

// (x, weight|null, bias|null, eps) -> [y, mean, rstd]
Napi::Value layer_norm(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return TensorHandle::wrap_all(info.Env(), ops::layer_norm(to_tensor(info, 0, "input"), to_optional_tensor(info, 1, "weight"),
                                          to_optional_tensor(info, 2, "bias"), to_double(info, 3, "eps")));
  });
}

// (dy, x, mean, rstd, weight|null, needDx, needAffine) -> [dx, dweight, dbias]
Napi::Value layer_norm_backward(Info info) {
  return guard(info, [&]() -> Napi::Value {
    ops::LayerNormGrads g = ops::layer_norm_backward(
        to_tensor(info, 0, "grad"), to_tensor(info, 1, "input"), to_tensor(info, 2, "mean"), to_tensor(info, 3, "rstd"),
        to_optional_tensor(info, 4, "weight"), to_bool(info, 5, "needDx"), to_bool(info, 6, "needAffine"));
    Napi::Array a = Napi::Array::New(info.Env(), 3);
    a.Set(0u, wrap_optional(info, g.dx));
    a.Set(1u, wrap_optional(info, g.dgamma));
    a.Set(2u, wrap_optional(info, g.dbeta));
    return a;
  });
}

// (params, grads, bufs, initialised, lr, momentum, dampening, weightDecay, nesterov, maximize)
Napi::Value sgd_step(Info info) {
  return guard(info, [&]() -> Napi::Value {
    std::vector<double> flags = to_numbers(info, 3, "initialised");
    std::vector<uint8_t> init(flags.size());
    for (size_t k = 0; k < flags.size(); ++k) init[k] = flags[k] != 0;
    ops::sgd_step(to_tensors(info, 0, "params"), to_tensors(info, 1, "grads"), to_tensors(info, 2, "bufs"), init,
                  to_double(info, 4, "lr"), to_double(info, 5, "momentum"), to_double(info, 6, "dampening"),
                  to_double(info, 7, "weightDecay"), to_bool(info, 8, "nesterov"), to_bool(info, 9, "maximize"));
    return info.Env().Undefined();
  });
}

// (params, grads, expAvg, expAvgSq, maxExpAvgSq, steps, lr, beta1, beta2, eps, weightDecay, decoupled, amsgrad, maximize)
Napi::Value adam_step(Info info) {
  return guard(info, [&]() -> Napi::Value {
    ops::adam_step(to_tensors(info, 0, "params"), to_tensors(info, 1, "grads"), to_tensors(info, 2, "expAvg"),
                   to_tensors(info, 3, "expAvgSq"), to_tensors(info, 4, "maxExpAvgSq"), to_numbers(info, 5, "steps"),
                   to_double(info, 6, "lr"), to_double(info, 7, "beta1"), to_double(info, 8, "beta2"),
                   to_double(info, 9, "eps"), to_double(info, 10, "weightDecay"), to_bool(info, 11, "decoupled"),
                   to_bool(info, 12, "amsgrad"), to_bool(info, 13, "maximize"));
    return info.Env().Undefined();
  });
}

Napi::Value total_norm(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), ops::total_norm(to_tensors(info, 0, "tensors"), to_double(info, 1, "normType")));
  });
}

Napi::Value scale_inplace(Info info) {
  return guard(info, [&]() -> Napi::Value {
    ops::scale_inplace(to_tensors(info, 0, "tensors"), to_double(info, 1, "factor"));
    return info.Env().Undefined();
  });
}

Napi::Value addmm_(Info info) {
  return guard(info, [&]() -> Napi::Value {
    ops::addmm_(to_tensor(info, 0, "c"), to_tensor(info, 1, "a"), to_tensor(info, 2, "b"), to_double(info, 3, "alpha"),
                to_double(info, 4, "beta"), to_optional_tensor(info, 5, "bias"), to_activation(info, 6));
    return info.Env().Undefined();
  });
}

}  // namespace

std::vector<Binding> nn_bindings() {
  return {
      {"addmm_", addmm_},
      {"linear", linear},
      {"linearTrain", linear_train},
      {"linearBackward", linear_backward},
      {"crossEntropy", cross_entropy},
      {"crossEntropyBackward", cross_entropy_backward},
      {"layerNorm", layer_norm},
      {"layerNormBackward", layer_norm_backward},
      {"sgdStep", sgd_step},
      {"adamStep", adam_step},
      {"totalNorm", total_norm},
      {"scaleInplace", scale_inplace},
  };
}

}  // namespace joule::napi
