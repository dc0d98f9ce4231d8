// NVML, opened with dlopen at first use so the addon never depends on the NVIDIA driver.
// Only the handful of entry points used here are declared (types from NVML's public API).
#include <dlfcn.h>

#include <mutex>

#include "energy/meters.h"

namespace joule::energy {
namespace {

using nvmlReturn_t = int;  // 0 = NVML_SUCCESS
using nvmlDevice_t = void*;

struct Nvml {
  bool loaded = false;
  std::string error;
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*device_count)(unsigned*) = nullptr;
  nvmlReturn_t (*device_by_index)(unsigned, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*total_energy)(nvmlDevice_t, unsigned long long*) = nullptr;  // millijoules
  nvmlReturn_t (*device_name)(nvmlDevice_t, char*, unsigned) = nullptr;
  const char* (*error_string)(nvmlReturn_t) = nullptr;
};

template <typename F>
bool bind(void* lib, const char* name, F& fn) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  return fn != nullptr;
}

const Nvml& nvml() {
  static Nvml n;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = dlopen("libnvidia-ml.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (!lib) {
      const char* why = dlerror();
      n.error = std::string("libnvidia-ml.so.1 cannot be loaded: ") + (why ? why : "unknown reason");
      return;
    }
    bool ok = bind(lib, "nvmlInit_v2", n.init) && bind(lib, "nvmlDeviceGetCount_v2", n.device_count) &&
              bind(lib, "nvmlDeviceGetHandleByIndex_v2", n.device_by_index) &&
              bind(lib, "nvmlDeviceGetTotalEnergyConsumption", n.total_energy) &&
              bind(lib, "nvmlDeviceGetName", n.device_name) && bind(lib, "nvmlErrorString", n.error_string);
    if (!ok) {
      n.error = "libnvidia-ml.so.1 lacks an expected entry point (driver too old)";
      return;
    }
    nvmlReturn_t r = n.init();
    if (r != 0) {
      n.error = std::string("nvmlInit failed: ") + n.error_string(r);
      return;
    }
    n.loaded = true;
  });
  return n;
}

}  // namespace

GpuEnergy nvml_energy() {
  GpuEnergy out;
  const Nvml& n = nvml();
  if (!n.loaded) {
    out.error = n.error;
    return out;
  }
  unsigned count = 0;
  nvmlReturn_t r = n.device_count(&count);
  if (r != 0 || count == 0) {
    out.error = r != 0 ? std::string("nvmlDeviceGetCount failed: ") + n.error_string(r) : "NVML reports no GPU";
    return out;
  }
  for (unsigned i = 0; i < count; ++i) {
    nvmlDevice_t dev = nullptr;
    unsigned long long mj = 0;
    char name[96] = {0};
    if ((r = n.device_by_index(i, &dev)) != 0 || (r = n.total_energy(dev, &mj)) != 0) {
      out.error = std::string("NVML energy counter unavailable: ") + n.error_string(r);
      out.joules.clear();
      return out;
    }
    n.device_name(dev, name, sizeof(name));
    out.joules.push_back(static_cast<double>(mj) / 1000.0);
    out.names.emplace_back(name);
  }
  out.ok = true;
  return out;
}

}  // namespace joule::energy
