// The addon's surface. Each function converts and checks its arguments, calls one function of
// the core, and wraps the result. lib/native.ts declares the same surface in TypeScript.
#include <napi.h>

#include <cmath>
#include <cstring>

#include "core/cpu_features.h"
#include "core/dynlib.h"
#include "core/storage.h"
#include "core/threadpool.h"
#include "cuda/backend.h"
#include "napi/addon_data.h"
#include "napi/convert.h"
#include "napi/handle.h"
#include "napi/registry.h"
#include "ops/ops.h"

#ifndef JOULE_VERSION
#define JOULE_VERSION "0.0.0"
#endif
#ifndef JOULE_BUILD_SYSTEM
#define JOULE_BUILD_SYSTEM "unknown"
#endif

namespace joule::napi {
namespace {

using Info = const Napi::CallbackInfo&;

Napi::Value wrap(Info info, Tensor t) { return TensorHandle::wrap(info.Env(), std::move(t)); }

// ---- handles and data ----

Napi::Value set_error_factory(Info info) {
  return guard(info, [&]() -> Napi::Value {
    Napi::Value f = arg(info, 0, "factory");
    JOULE_CHECK(f.IsFunction(), Code::InvalidArgument, "expected a function for 'factory'");
    addon_data(info.Env()).error_factory = Napi::Persistent(f.As<Napi::Function>());
    return info.Env().Undefined();
  });
}

Napi::Value is_handle(Info info) {
  return guard(info, [&]() -> Napi::Value { return Napi::Boolean::New(info.Env(), TensorHandle::unwrap(arg(info, 0, "value")) != nullptr); });
}

Napi::Value meta(Info info) {
  return guard(info, [&]() -> Napi::Value {
    const Tensor& t = to_tensor(info, 0, "tensor");
    Napi::Array out = Napi::Array::New(info.Env(), 3);
    out.Set(0u, from_ints(info.Env(), t.shape));
    out.Set(1u, Napi::String::New(info.Env(), dtype_name(t.dtype)));
    out.Set(2u, Napi::String::New(info.Env(), t.device().name()));
    return out;
  });
}

Napi::Value layout(Info info) {
  return guard(info, [&]() -> Napi::Value {
    const Tensor& t = to_tensor(info, 0, "tensor");
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("strides", from_ints(info.Env(), t.strides));
    out.Set("offset", Napi::Number::New(info.Env(), static_cast<double>(t.offset)));
    out.Set("contiguous", Napi::Boolean::New(info.Env(), t.is_contiguous()));
    out.Set("sharesStorageWith", Napi::Number::New(info.Env(), static_cast<double>(t.storage.use_count())));
    return out;
  });
}

Napi::Value same_storage(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return Napi::Boolean::New(info.Env(), to_tensor(info, 0, "a").storage == to_tensor(info, 1, "b").storage);
  });
}

Napi::Value dispose(Info info) {
  return guard(info, [&]() -> Napi::Value {
    TensorHandle* h = TensorHandle::unwrap(arg(info, 0, "tensor"));
    JOULE_CHECK(h != nullptr, Code::InvalidArgument, "expected a tensor for 'tensor'");
    h->release(info.Env());
    return info.Env().Undefined();
  });
}

Napi::Value from_buffer(Info info) {
  return guard(info, [&]() -> Napi::Value {
    Napi::Value data = arg(info, 0, "data");
    const void* ptr = nullptr;
    size_t bytes = 0;
    if (data.IsTypedArray()) {
      Napi::TypedArray ta = data.As<Napi::TypedArray>();
      ptr = static_cast<const char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
      bytes = ta.ByteLength();
    } else if (data.IsArrayBuffer()) {
      Napi::ArrayBuffer ab = data.As<Napi::ArrayBuffer>();
      ptr = ab.Data();
      bytes = ab.ByteLength();
    } else {
      fail(Code::InvalidArgument, "expected a TypedArray or ArrayBuffer for 'data'");
    }
    return wrap(info, ops::from_host(ptr, bytes, to_ints(info, 1, "shape"), to_dtype(info, 2), to_device(info, 3)));
  });
}

Napi::Value to_buffer(Info info) {
  return guard(info, [&]() -> Napi::Value {
    const Tensor& t = to_tensor(info, 0, "tensor");
    // V8 aborts the process when an ArrayBuffer cannot be allocated: refuse what JavaScript cannot
    // hold (Node's Buffer limit, 4 GiB) before asking (a huge expanded view is cheap to make).
    constexpr size_t kMaxJsBytes = size_t{1} << 32;
    check(t.nbytes() <= kMaxJsBytes, Code::OutOfMemory, "cannot read ", t.nbytes(), " bytes (shape ",
          shape_str(t.shape), ") back into JavaScript: more than the ", kMaxJsBytes, " bytes of one ArrayBuffer");
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(info.Env(), t.nbytes());
    ops::to_host(t, ab.Data(), t.nbytes());
    return ab;
  });
}

Napi::Value item(Info info) {
  return guard(info, [&]() -> Napi::Value {
    const Tensor& t = to_tensor(info, 0, "tensor");
    JOULE_CHECK(t.numel() == 1, Code::ShapeMismatch, "item: expected a tensor with one element, got shape ",
          shape_str(t.shape));
    double v = 0;
    dispatch_dtype(t.dtype, [&](auto tag) {
      decltype(tag) x;
      ops::to_host(t, &x, sizeof(x));
      v = static_cast<double>(x);
    });
    return Napi::Number::New(info.Env(), v);
  });
}

// ---- creation and random ----

Napi::Value full(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::full(to_ints(info, 0, "shape"), to_double(info, 1, "value"), to_dtype(info, 2),
                                to_device(info, 3)));
  });
}

Napi::Value arange(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::arange(to_double(info, 0, "start"), to_double(info, 1, "end"), to_double(info, 2, "step"),
                                  to_dtype(info, 3), to_device(info, 4)));
  });
}

Napi::Value linspace(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::linspace(to_double(info, 0, "start"), to_double(info, 1, "end"), to_int(info, 2, "steps"),
                                    to_dtype(info, 3), to_device(info, 4)));
  });
}

Napi::Value eye(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::eye(to_int(info, 0, "rows"), to_int(info, 1, "cols"), to_dtype(info, 2), to_device(info, 3)));
  });
}

Napi::Value manual_seed(Info info) {
  return guard(info, [&]() -> Napi::Value {
    int64_t seed = to_int(info, 0, "seed");
    JOULE_CHECK(seed >= 0, Code::InvalidArgument, "manualSeed: expected a non-negative integer, got ", seed);
    ops::manual_seed(static_cast<uint64_t>(seed));
    return info.Env().Undefined();
  });
}

Napi::Value rng_state(Info info) {
  return guard(info, [&]() -> Napi::Value {
    ops::RngState s = ops::rng_state();
    // Decimal strings: both values may exceed 2^53.
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("seed", Napi::String::New(info.Env(), std::to_string(s.seed)));
    out.Set("offset", Napi::String::New(info.Env(), std::to_string(s.offset)));
    return out;
  });
}

Napi::Value set_rng_state(Info info) {
  return guard(info, [&]() -> Napi::Value {
    auto parse = [&](size_t i, const char* name) {
      std::string s = to_string(info, i, name);
      JOULE_CHECK(!s.empty() && s.size() <= 20 && s.find_first_not_of("0123456789") == std::string::npos,
            Code::InvalidArgument, "setRngState: expected a decimal string for '", name, "', got '", s, "'");
      errno = 0;
      unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
      JOULE_CHECK(errno == 0, Code::InvalidArgument, "setRngState: '", name, "' is out of range");
      return static_cast<uint64_t>(v);
    };
    ops::set_rng_state({parse(0, "seed"), parse(1, "offset")});
    return info.Env().Undefined();
  });
}

Napi::Value rand(Info info) {
  return guard(info, [&]() -> Napi::Value { return wrap(info, ops::rand(to_ints(info, 0, "shape"), to_device(info, 1))); });
}

Napi::Value randn(Info info) {
  return guard(info, [&]() -> Napi::Value { return wrap(info, ops::randn(to_ints(info, 0, "shape"), to_device(info, 1))); });
}

Napi::Value randint(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::randint(to_int(info, 0, "low"), to_int(info, 1, "high"), to_ints(info, 2, "shape"),
                                   to_device(info, 3)));
  });
}

Napi::Value bernoulli_mask(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::bernoulli_mask(to_ints(info, 0, "shape"), to_double(info, 1, "keep"), to_device(info, 2)));
  });
}

// ---- views and copies ----

Napi::Value reshape(Info info) {
  return guard(info, [&]() -> Napi::Value { return wrap(info, ops::reshape(to_tensor(info, 0, "tensor"), to_ints(info, 1, "shape"))); });
}
Napi::Value view(Info info) {
  return guard(info, [&]() -> Napi::Value { return wrap(info, ops::view(to_tensor(info, 0, "tensor"), to_ints(info, 1, "shape"))); });
}
Napi::Value permute(Info info) {
  return guard(info, [&]() -> Napi::Value { return wrap(info, ops::permute(to_tensor(info, 0, "tensor"), to_ints(info, 1, "axes"))); });
}
Napi::Value transpose(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::transpose(to_tensor(info, 0, "tensor"), to_int(info, 1, "axis0"), to_int(info, 2, "axis1")));
  });
}
Napi::Value slice(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::slice(to_tensor(info, 0, "tensor"), to_int(info, 1, "axis"), to_int(info, 2, "start"),
                                 to_int(info, 3, "end"), to_int(info, 4, "step")));
  });
}
Napi::Value select(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::select(to_tensor(info, 0, "tensor"), to_int(info, 1, "axis"), to_int(info, 2, "index")));
  });
}
Napi::Value expand(Info info) {
  return guard(info, [&]() -> Napi::Value { return wrap(info, ops::expand(to_tensor(info, 0, "tensor"), to_ints(info, 1, "shape"))); });
}
Napi::Value squeeze(Info info) {
  return guard(info, [&]() -> Napi::Value { return wrap(info, ops::squeeze(to_tensor(info, 0, "tensor"), to_ints(info, 1, "axes"))); });
}
Napi::Value unsqueeze(Info info) {
  return guard(info, [&]() -> Napi::Value { return wrap(info, ops::unsqueeze(to_tensor(info, 0, "tensor"), to_int(info, 1, "axis"))); });
}
Napi::Value contiguous(Info info) {
  return guard(info, [&]() -> Napi::Value { return wrap(info, ops::contiguous(to_tensor(info, 0, "tensor"))); });
}
Napi::Value clone(Info info) {
  return guard(info, [&]() -> Napi::Value { return wrap(info, ops::clone(to_tensor(info, 0, "tensor"))); });
}
Napi::Value cast(Info info) {
  return guard(info, [&]() -> Napi::Value { return wrap(info, ops::cast(to_tensor(info, 0, "tensor"), to_dtype(info, 1))); });
}
Napi::Value to(Info info) {
  return guard(info, [&]() -> Napi::Value { return wrap(info, ops::to_device(to_tensor(info, 0, "tensor"), to_device(info, 1))); });
}
Napi::Value copy_into(Info info) {
  return guard(info, [&]() -> Napi::Value {
    ops::copy_into(to_tensor(info, 0, "dst"), to_tensor(info, 1, "src"));
    return info.Env().Undefined();
  });
}
Napi::Value concat(Info info) {
  return guard(info, [&]() -> Napi::Value { return wrap(info, ops::concat(to_tensors(info, 0, "tensors"), to_int(info, 1, "axis"))); });
}

// ---- elementwise ----

Napi::Value binary(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::binary(ops::parse_binary(to_string(info, 0, "op")), to_tensor(info, 1, "a"), to_tensor(info, 2, "b")));
  });
}
Napi::Value binary_scalar(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::binary_scalar(ops::parse_binary(to_string(info, 0, "op")), to_tensor(info, 1, "a"),
                                         to_double(info, 2, "scalar"), to_bool(info, 3, "scalarFirst")));
  });
}
Napi::Value binary_inplace(Info info) {
  return guard(info, [&]() -> Napi::Value {
    ops::binary_inplace(ops::parse_binary(to_string(info, 0, "op")), to_tensor(info, 1, "a"), to_tensor(info, 2, "b"));
    return info.Env().Undefined();
  });
}
Napi::Value binary_scalar_inplace(Info info) {
  return guard(info, [&]() -> Napi::Value {
    ops::binary_scalar_inplace(ops::parse_binary(to_string(info, 0, "op")), to_tensor(info, 1, "a"),
                               to_double(info, 2, "scalar"));
    return info.Env().Undefined();
  });
}
Napi::Value unary(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::unary(ops::parse_unary(to_string(info, 0, "op")), to_tensor(info, 1, "a")));
  });
}
Napi::Value unary_inplace(Info info) {
  return guard(info, [&]() -> Napi::Value {
    ops::unary_inplace(ops::parse_unary(to_string(info, 0, "op")), to_tensor(info, 1, "a"));
    return info.Env().Undefined();
  });
}
Napi::Value clamp(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::clamp(to_tensor(info, 0, "a"), to_double(info, 1, "min"), to_double(info, 2, "max")));
  });
}
Napi::Value where(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::where(to_tensor(info, 0, "condition"), to_tensor(info, 1, "a"), to_tensor(info, 2, "b")));
  });
}
Napi::Value fill(Info info) {
  return guard(info, [&]() -> Napi::Value {
    ops::fill(to_tensor(info, 0, "tensor"), to_double(info, 1, "value"));
    return info.Env().Undefined();
  });
}

// ---- reductions ----

Napi::Value reduce(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::reduce(ops::parse_reduce(to_string(info, 0, "op")), to_tensor(info, 1, "a"),
                                  to_ints(info, 2, "axes"), to_bool(info, 3, "keepDims")));
  });
}
Napi::Value variance(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::variance(to_tensor(info, 0, "a"), to_ints(info, 1, "axes"), to_int(info, 2, "correction"),
                                    to_bool(info, 3, "keepDims")));
  });
}
Napi::Value logsumexp(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::logsumexp(to_tensor(info, 0, "a"), to_ints(info, 1, "axes"), to_bool(info, 2, "keepDims")));
  });
}
Napi::Value softmax(Info info) {
  return guard(info, [&]() -> Napi::Value { return wrap(info, ops::softmax(to_tensor(info, 0, "a"), to_int(info, 1, "axis"))); });
}
Napi::Value log_softmax(Info info) {
  return guard(info, [&]() -> Napi::Value { return wrap(info, ops::log_softmax(to_tensor(info, 0, "a"), to_int(info, 1, "axis"))); });
}

// ---- linear algebra and indexing ----

Napi::Value matmul(Info info) {
  return guard(info, [&]() -> Napi::Value { return wrap(info, ops::matmul(to_tensor(info, 0, "a"), to_tensor(info, 1, "b"))); });
}
Napi::Value index_select(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::index_select(to_tensor(info, 0, "a"), to_int(info, 1, "axis"), to_tensor(info, 2, "index")));
  });
}
Napi::Value gather(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::gather(to_tensor(info, 0, "a"), to_int(info, 1, "axis"), to_tensor(info, 2, "index")));
  });
}
Napi::Value scatter_add(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::scatter_add(to_tensor(info, 0, "a"), to_int(info, 1, "axis"), to_tensor(info, 2, "index"),
                                       to_tensor(info, 3, "src")));
  });
}

Napi::Value index_add(Info info) {
  return guard(info, [&]() -> Napi::Value {
    return wrap(info, ops::index_add(to_tensor(info, 0, "a"), to_int(info, 1, "axis"), to_tensor(info, 2, "index"),
                                     to_tensor(info, 3, "src")));
  });
}

// ---- runtime ----

Napi::Value memory(Info info) {
  return guard(info, [&]() -> Napi::Value {
    auto stats = memory_stats();
    Napi::Array out = Napi::Array::New(info.Env(), stats.size());
    for (size_t i = 0; i < stats.size(); ++i) {
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("device", stats[i].device);
      o.Set("tensors", Napi::Number::New(info.Env(), static_cast<double>(stats[i].tensors)));
      o.Set("bytes", Napi::Number::New(info.Env(), static_cast<double>(stats[i].bytes)));
      o.Set("cachedBytes", Napi::Number::New(info.Env(), static_cast<double>(stats[i].cached_bytes)));
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  });
}

Napi::Value release_cached(Info info) {
  return guard(info, [&]() -> Napi::Value {
    release_cached_memory();
    return info.Env().Undefined();
  });
}

Napi::Value set_threads(Info info) {
  return guard(info, [&]() -> Napi::Value {
    int64_t n = to_int(info, 0, "threads");
    JOULE_CHECK(n >= 1 && n <= 256, Code::InvalidArgument, "setNumThreads: expected an integer from 1 to 256, got ", n);
    set_num_threads(static_cast<int>(n));
    return info.Env().Undefined();
  });
}

Napi::Value get_threads(Info info) {
  return guard(info, [&]() -> Napi::Value { return Napi::Number::New(info.Env(), num_threads()); });
}

Napi::Value set_isa(Info info) {
  return guard(info, [&]() -> Napi::Value {
    set_active_isa(parse_isa(to_string(info, 0, "isa")));
    return info.Env().Undefined();
  });
}

Napi::Value get_isa(Info info) {
  return guard(info, [&]() -> Napi::Value { return Napi::String::New(info.Env(), isa_name(active_isa())); });
}

Napi::Value library_load_error(Info info) {
  return guard(info, [&]() -> Napi::Value {
    std::string name = to_string(info, 0, "library");
    // Only the vendor libraries Joule itself opens: this is not a general dlopen for JavaScript.
    JOULE_CHECK(name == "libnccl.so.2" || name == "libnvidia-ml.so.1", Code::InvalidArgument,
          "expected 'libnccl.so.2' or 'libnvidia-ml.so.1', got '", name, "'");
    return Napi::String::New(info.Env(), joule::library_load_error(name));
  });
}

Napi::Value build_info(Info info) {
  return guard(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("version", JOULE_VERSION);
    out.Set("buildSystem", JOULE_BUILD_SYSTEM);
    const CpuFeatures& f = cpu_features();
    Napi::Object cpu = Napi::Object::New(env);
    cpu.Set("model", f.model);
    cpu.Set("avx2", f.avx2);
    cpu.Set("fma", f.fma);
    cpu.Set("avx512f", f.avx512f);
    cpu.Set("avx512bw", f.avx512bw);
    cpu.Set("avx512vl", f.avx512vl);
    cpu.Set("avx512vnni", f.avx512vnni);
    cpu.Set("avx512bf16", f.avx512bf16);
    cpu.Set("avxvnni", f.avxvnni);
    cpu.Set("isa", isa_name(active_isa()));
    out.Set("cpu", cpu);
    cuda::BuildInfo b = cuda::build_info();
    Napi::Object c = Napi::Object::New(env);
    c.Set("compiled", b.compiled);
    c.Set("architectures", b.architectures);
    c.Set("runtimeVersion", b.runtime_version);
    int count = cuda::device_count();
    c.Set("deviceCount", count);
    c.Set("reason", cuda::unavailable_reason());
    Napi::Array names = Napi::Array::New(env, static_cast<size_t>(count));
    for (int i = 0; i < count; ++i) names.Set(static_cast<uint32_t>(i), cuda::device_name(i));
    c.Set("devices", names);
    out.Set("cuda", c);
    return out;
  });
}

}  // namespace

std::vector<Binding> tensor_bindings() {
  return {
      {"setErrorFactory", set_error_factory}, {"isHandle", is_handle}, {"meta", meta}, {"layout", layout}, {"sameStorage", same_storage},
      {"dispose", dispose}, {"fromBuffer", from_buffer}, {"toBuffer", to_buffer}, {"item", item},
      {"full", full}, {"arange", arange}, {"linspace", linspace}, {"eye", eye},
      {"manualSeed", manual_seed}, {"rngState", rng_state}, {"setRngState", set_rng_state},
      {"rand", rand}, {"randn", randn}, {"randint", randint}, {"bernoulliMask", bernoulli_mask},
      {"reshape", reshape}, {"view", view}, {"permute", permute}, {"transpose", transpose},
      {"slice", slice}, {"select", select}, {"expand", expand}, {"squeeze", squeeze},
      {"unsqueeze", unsqueeze}, {"contiguous", contiguous}, {"clone", clone}, {"cast", cast},
      {"to", to}, {"copyInto", copy_into}, {"concat", concat},
      {"binary", binary}, {"binaryScalar", binary_scalar}, {"binaryInplace", binary_inplace},
      {"binaryScalarInplace", binary_scalar_inplace}, {"unary", unary}, {"unaryInplace", unary_inplace},
      {"clamp", clamp}, {"where", where}, {"fill", fill},
      {"reduce", reduce}, {"variance", variance}, {"logsumexp", logsumexp}, {"softmax", softmax},
      {"logSoftmax", log_softmax}, {"matmul", matmul}, {"indexSelect", index_select}, {"indexAdd", index_add}, {"gather", gather},
      {"scatterAdd", scatter_add},
      {"memory", memory}, {"releaseCachedMemory", release_cached}, {"setNumThreads", set_threads},
      {"getNumThreads", get_threads}, {"setIsa", set_isa}, {"getIsa", get_isa}, {"buildInfo", build_info}, {"libraryLoadError", library_load_error},
  };
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<AddonData>(new AddonData());
  for (auto list : {tensor_bindings(), nn_bindings(), quant_bindings(), dist_bindings(), energy_bindings(), attention_bindings(), gemm_bindings(), decoder_bindings()}) {
    for (const auto& [name, fn] : list) exports.Set(name, Napi::Function::New(env, fn, name));
  }
  return exports;
}

}  // namespace joule::napi

static Napi::Object InitJoule(Napi::Env env, Napi::Object exports) { return joule::napi::init(env, exports); }
NODE_API_MODULE(joule, InitJoule)
