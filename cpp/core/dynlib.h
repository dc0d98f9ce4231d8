// Shared libraries opened at run time (NCCL, NVML): Joule never links them, so the addon loads
// on machines that lack them and reports what is missing instead.
#pragma once
#include <string>

namespace joule {

// Opens `soname` and closes it again: "" when it loads, else the loader's reason.
std::string library_load_error(const std::string& soname);

}  // namespace joule
