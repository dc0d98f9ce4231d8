// Argument conversion for the bindings: every JavaScript value is checked before it reaches the
// core, and every C++ error leaves as a JouleError with a stable code. No math here.
#pragma once
#include <napi.h>

#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/gemm/gemm.h"

namespace joule::napi {

// Throws a JouleError (built by the factory lib/ registers, or a plain Error with .code).
[[noreturn]] void throw_error(Napi::Env env, const char* code, const std::string& message);

// Runs body and turns any C++ exception into a JouleError.
template <typename Body>
Napi::Value guard(const Napi::CallbackInfo& info, Body body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const Error& e) {
    throw_error(info.Env(), code_name(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    throw_error(info.Env(), "OUT_OF_MEMORY", "out of memory");
  } catch (const std::exception& e) {
    throw_error(info.Env(), "INTERNAL", e.what());
  }
}

Napi::Value arg(const Napi::CallbackInfo& info, size_t i, const char* name);
int64_t to_int(const Napi::CallbackInfo& info, size_t i, const char* name);
double to_double(const Napi::CallbackInfo& info, size_t i, const char* name);  // NaN and ±Infinity pass
bool to_bool(const Napi::CallbackInfo& info, size_t i, const char* name);
std::string to_string(const Napi::CallbackInfo& info, size_t i, const char* name);
std::vector<int64_t> to_ints(const Napi::CallbackInfo& info, size_t i, const char* name);
const Tensor& to_tensor(const Napi::CallbackInfo& info, size_t i, const char* name);
std::optional<Tensor> to_optional_tensor(const Napi::CallbackInfo& info, size_t i, const char* name);  // null/undefined: none
gemm::Activation to_activation(const Napi::CallbackInfo& info, size_t i);  // 'none' | 'relu' | 'gelu'
std::vector<Tensor> to_tensors(const Napi::CallbackInfo& info, size_t i, const char* name);
DType to_dtype(const Napi::CallbackInfo& info, size_t i);
Device to_device(const Napi::CallbackInfo& info, size_t i);

Napi::Value from_ints(Napi::Env env, const std::vector<int64_t>& v);

}  // namespace joule::napi
