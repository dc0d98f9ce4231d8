// Bindings of the meters (cpp/energy) and the FLOP counter.
#include "core/flops.h"
#include "energy/meters.h"
#include "napi/convert.h"
#include "napi/registry.h"

namespace joule::napi {
namespace {

using Info = const Napi::CallbackInfo&;

Napi::Value cpu_peak(Info info) {
  return guard(info, [&]() -> Napi::Value {
    int64_t threads = to_int(info, 0, "threads");
    double seconds = to_double(info, 1, "seconds");
    JOULE_CHECK(threads >= 1 && threads <= 256, Code::InvalidArgument, "cpuPeak: expected 1..256 threads, got ", threads);
    JOULE_CHECK(seconds > 0 && seconds <= 10, Code::InvalidArgument, "cpuPeak: expected 0 < seconds <= 10, got ", seconds);
    return Napi::Number::New(info.Env(), energy::cpu_fma_peak(static_cast<int>(threads), seconds));
  });
}

Napi::Value gpu_energy(Info info) {
  return guard(info, [&]() -> Napi::Value {
    energy::GpuEnergy e = energy::nvml_energy();
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("ok", e.ok);
    out.Set("error", e.error);
    Napi::Array j = Napi::Array::New(info.Env(), e.joules.size());
    Napi::Array n = Napi::Array::New(info.Env(), e.names.size());
    for (size_t i = 0; i < e.joules.size(); ++i) {
      j.Set(static_cast<uint32_t>(i), e.joules[i]);
      n.Set(static_cast<uint32_t>(i), e.names[i]);
    }
    out.Set("joules", j);
    out.Set("names", n);
    return out;
  });
}

Napi::Value flop_count(Info info) {
  return guard(info, [&]() -> Napi::Value { return Napi::Number::New(info.Env(), static_cast<double>(flops::total())); });
}

}  // namespace

std::vector<Binding> energy_bindings() {
  return {{"cpuPeak", cpu_peak}, {"gpuEnergy", gpu_energy}, {"flopCount", flop_count}};
}

}  // namespace joule::napi
