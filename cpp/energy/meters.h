// What the hardware can do and what it spends: the CPU's measured FMA peak, and energy counters
// (NVML on NVIDIA GPUs, opened at run time).
#pragma once
#include <string>
#include <vector>

namespace joule::energy {

// FLOP/s of independent fused multiply-add chains on `threads` threads for about `seconds`,
// with the widest vector unit the active ISA allows: the CPU's practical fp32 peak.
double cpu_fma_peak(int threads, double seconds);

struct GpuEnergy {
  bool ok = false;
  std::string error;             // why not, when !ok
  std::vector<double> joules;    // per device, since the driver loaded
  std::vector<std::string> names;
};

// Reads nvmlDeviceGetTotalEnergyConsumption for every GPU; never throws.
GpuEnergy nvml_energy();

}  // namespace joule::energy
