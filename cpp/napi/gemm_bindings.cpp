// Bindings of the process-wide float32 matmul precision (ops::MatmulPrecision): it picks the
// CUDA GEMM kernel (exact fp32, TF32 or BF16 tensor cores); the CPU GEMM is always exact fp32.
#include "napi/convert.h"
#include "napi/registry.h"
#include "ops/ops.h"

namespace joule::napi {
namespace {

using Info = const Napi::CallbackInfo&;

// ('highest' | 'high' | 'medium') -> undefined; anything else is INVALID_ARGUMENT.
Napi::Value set_matmul_precision(Info info) {
  return guard(info, [&]() -> Napi::Value {
    ops::set_matmul_precision(ops::parse_matmul_precision(to_string(info, 0, "precision")));
    return info.Env().Undefined();
  });
}

Napi::Value get_matmul_precision(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return Napi::String::New(info.Env(), ops::matmul_precision_name(ops::matmul_precision()));
  });
}

}  // namespace

std::vector<Binding> gemm_bindings() {
  return {
      {"setMatmulPrecision", set_matmul_precision},
      {"getMatmulPrecision", get_matmul_precision},
  };
}

}  // namespace joule::napi
