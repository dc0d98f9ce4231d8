#include "napi/convert.h"

#include <cmath>

#include "napi/addon_data.h"
#include "napi/handle.h"

namespace joule::napi {
namespace {

std::string type_of(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsBoolean()) return "boolean";
  if (v.IsNumber()) return "number";
  if (v.IsBigInt()) return "bigint";
  if (v.IsString()) return "string";
  if (v.IsArray()) return "array";
  if (v.IsFunction()) return "function";
  return "object";
}

[[noreturn]] void bad(const Napi::CallbackInfo& info, size_t i, const char* name, const char* expected) {
  Napi::Value v = i < info.Length() ? info[i] : info.Env().Undefined();
  fail(Code::InvalidArgument, "expected ", expected, " for '", name, "', got ", type_of(v));
}

constexpr double kMaxSafe = 9007199254740991.0;  // 2^53 - 1

int64_t int_from(const Napi::Value& v, const char* name) {
  JOULE_CHECK(v.IsNumber(), Code::InvalidArgument, "expected an integer for '", name, "', got ", type_of(v));
  double d = v.As<Napi::Number>().DoubleValue();
  JOULE_CHECK(std::isfinite(d) && d == std::floor(d) && std::fabs(d) <= kMaxSafe, Code::InvalidArgument,
        "expected an integer for '", name, "', got ", d);
  return static_cast<int64_t>(d);
}

}  // namespace

void throw_error(Napi::Env env, const char* code, const std::string& message) {
  Napi::FunctionReference& factory = addon_data(env).error_factory;
  if (!factory.IsEmpty()) {
    Napi::Value err = factory.Call({Napi::String::New(env, code), Napi::String::New(env, message)});
    if (err.IsObject()) throw Napi::Error(env, err);
  }
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  err.Set("name", Napi::String::New(env, "JouleError"));
  throw err;
}

Napi::Value arg(const Napi::CallbackInfo& info, size_t i, const char*) {
  return i < info.Length() ? info[i] : info.Env().Undefined();
}

int64_t to_int(const Napi::CallbackInfo& info, size_t i, const char* name) { return int_from(arg(info, i, name), name); }

double to_double(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = arg(info, i, name);
  if (!v.IsNumber()) bad(info, i, name, "a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool to_bool(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = arg(info, i, name);
  if (!v.IsBoolean()) bad(info, i, name, "a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string to_string(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = arg(info, i, name);
  if (!v.IsString()) bad(info, i, name, "a string");
  return v.As<Napi::String>().Utf8Value();
}

std::vector<int64_t> to_ints(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = arg(info, i, name);
  if (!v.IsArray()) bad(info, i, name, "an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  uint32_t n = a.Length();
  JOULE_CHECK(n <= 64, Code::InvalidArgument, "expected at most 64 entries for '", name, "', got ", n);
  std::vector<int64_t> out(n);
  for (uint32_t k = 0; k < n; ++k) out[k] = int_from(a.Get(k), name);
  return out;
}

const Tensor& to_tensor(const Napi::CallbackInfo& info, size_t i, const char* name) {
  TensorHandle* h = TensorHandle::unwrap(arg(info, i, name));
  if (!h) bad(info, i, name, "a tensor");
  JOULE_CHECK(h->tensor().has_value(), Code::Disposed, "'", name, "' is a tensor that was disposed");
  return *h->tensor();
}

std::optional<Tensor> to_optional_tensor(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = arg(info, i, name);
  if (v.IsNull() || v.IsUndefined()) return std::nullopt;
  return to_tensor(info, i, name);
}

gemm::Activation to_activation(const Napi::CallbackInfo& info, size_t i) {
  std::string a = to_string(info, i, "activation");
  if (a == "none") return gemm::Activation::None;
  if (a == "relu") return gemm::Activation::Relu;
  if (a == "gelu") return gemm::Activation::Gelu;
  fail(Code::InvalidArgument, "expected an activation 'none', 'relu' or 'gelu', got '", a, "'");
}

std::vector<Tensor> to_tensors(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = arg(info, i, name);
  if (!v.IsArray()) bad(info, i, name, "an array of tensors");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<Tensor> out;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    TensorHandle* h = TensorHandle::unwrap(a.Get(k));
    JOULE_CHECK(h != nullptr, Code::InvalidArgument, "expected only tensors in '", name, "' (entry ", k, " is not one)");
    JOULE_CHECK(h->tensor().has_value(), Code::Disposed, "entry ", k, " of '", name, "' is a tensor that was disposed");
    out.push_back(*h->tensor());
  }
  return out;
}

DType to_dtype(const Napi::CallbackInfo& info, size_t i) { return parse_dtype(to_string(info, i, "dtype")); }
Device to_device(const Napi::CallbackInfo& info, size_t i) { return parse_device(to_string(info, i, "device")); }

Napi::Value from_ints(Napi::Env env, const std::vector<int64_t>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t k = 0; k < v.size(); ++k) a.Set(static_cast<uint32_t>(k), Napi::Number::New(env, static_cast<double>(v[k])));
  return a;
}

}  // namespace joule::napi
