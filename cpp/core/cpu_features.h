// What the CPU can do, read once from CPUID (and XGETBV: the OS must save the wide registers).
#pragma once
#include <string>

namespace joule {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;
  bool avxvnni = false;
  std::string model;
};

const CpuFeatures& cpu_features();

// The instruction set the kernels use: the best the CPU has, unless JOULE_ISA forces a lower one.
enum class Isa { Generic = 0, Avx2 = 1, Avx512 = 2 };
Isa active_isa();
void set_active_isa(Isa isa);  // for tests; throws if the CPU lacks it
const char* isa_name(Isa isa);
Isa parse_isa(const std::string& name);  // throws INVALID_ARGUMENT on an unknown name

}  // namespace joule
