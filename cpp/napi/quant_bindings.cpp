// Bindings of the int8 quantization ops (cpp/ops/quant.h).
#include "napi/convert.h"
#include "napi/handle.h"
#include "napi/registry.h"
#include "ops/quant.h"

namespace joule::napi {
namespace {

using Info = const Napi::CallbackInfo&;

// (x, axis (-1: per tensor), symmetric, qmin, qmax) -> [scale] or [scale, zeroPoint]
Napi::Value quant_params(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return TensorHandle::wrap_all(info.Env(), ops::quant_params(to_tensor(info, 0, "input"), to_int(info, 1, "axis"),
                                            to_bool(info, 2, "symmetric"), to_int(info, 3, "qmin"),
                                            to_int(info, 4, "qmax")));
  });
}

// (x, scale, zeroPoint|null, axis, qmin, qmax, dtype) -> q
Napi::Value quantize(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return TensorHandle::wrap(info.Env(), ops::quantize(to_tensor(info, 0, "input"), to_tensor(info, 1, "scale"),
                                                        to_optional_tensor(info, 2, "zeroPoint"), to_int(info, 3, "axis"),
                                                        to_int(info, 4, "qmin"), to_int(info, 5, "qmax"),
                                                        to_dtype(info, 6)));
  });
}

// (q, scale, zeroPoint|null, axis) -> x
Napi::Value dequantize(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return TensorHandle::wrap(info.Env(), ops::dequantize(to_tensor(info, 0, "q"), to_tensor(info, 1, "scale"),
                                                          to_optional_tensor(info, 2, "zeroPoint"), to_int(info, 3, "axis")));
  });
}

// (w int8 [N, K]) -> [packed, colSums]
Napi::Value quant_pack_weight(Info info) {
  return guard(info, [&]() -> Napi::Value { return TensorHandle::wrap_all(info.Env(), ops::quant_pack_weight(to_tensor(info, 0, "weight"))); });
}

// (packed, n, k) -> w int8 [N, K]
Napi::Value quant_unpack_weight(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return TensorHandle::wrap(info.Env(), ops::quant_unpack_weight(to_tensor(info, 0, "packed"), to_int(info, 1, "n"),
                                                                   to_int(info, 2, "k")));
  });
}

// (x, packed, colSums, wScale, bias|null, activation, inputScale, outlierThreshold) -> y
Napi::Value quant_linear(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return TensorHandle::wrap(
        info.Env(), ops::quant_linear(to_tensor(info, 0, "input"), to_tensor(info, 1, "packed"),
                                      to_tensor(info, 2, "colSums"), to_tensor(info, 3, "wScale"),
                                      to_optional_tensor(info, 4, "bias"), to_activation(info, 5),
                                      to_double(info, 6, "inputScale"), to_double(info, 7, "outlierThreshold")));
  });
}

// (a int8, aScale|null, packed, colSums, wScale|null, bias|null, activation) -> int32 or fp32
Napi::Value quant_matmul_int8(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return TensorHandle::wrap(
        info.Env(), ops::quant_matmul_int8(to_tensor(info, 0, "a"), to_optional_tensor(info, 1, "aScale"),
                                           to_tensor(info, 2, "packed"), to_tensor(info, 3, "colSums"),
                                           to_optional_tensor(info, 4, "wScale"), to_optional_tensor(info, 5, "bias"),
                                           to_activation(info, 6)));
  });
}

// (a fp32|int8, aScale|null, w int8 [N, K], wScale|null, bias|null, activation, inputScale) -> reference
Napi::Value quant_linear_reference(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return TensorHandle::wrap(
        info.Env(), ops::quant_linear_reference(to_tensor(info, 0, "a"), to_optional_tensor(info, 1, "aScale"),
                                                to_tensor(info, 2, "weight"), to_optional_tensor(info, 3, "wScale"),
                                                to_optional_tensor(info, 4, "bias"), to_activation(info, 5),
                                                to_double(info, 6, "inputScale")));
  });
}

Napi::Value quant_kernel(Info info) {
  return guard(info, [&]() -> Napi::Value { return Napi::String::New(info.Env(), ops::quant_kernel_name()); });
}

}  // namespace

std::vector<Binding> quant_bindings() {
  return {
      {"quantParams", quant_params},
      {"quantize", quantize},
      {"dequantize", dequantize},
      {"quantPackWeight", quant_pack_weight},
      {"quantUnpackWeight", quant_unpack_weight},
      {"quantLinear", quant_linear},
      {"quantMatmulInt8", quant_matmul_int8},
      {"quantLinearReference", quant_linear_reference},
      {"quantKernel", quant_kernel},
  };
}

}  // namespace joule::napi
