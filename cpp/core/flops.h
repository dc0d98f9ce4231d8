// A process-wide count of floating-point operations done by the kernels (a multiply-add counts
// as 2), read by the metering in lib/energy to compute throughput and model-FLOP utilisation.
#pragma once
#include <atomic>
#include <cstdint>

namespace joule::flops {

inline std::atomic<uint64_t>& counter() {
  static std::atomic<uint64_t> c{0};
  return c;
}
inline void add(uint64_t n) { counter().fetch_add(n, std::memory_order_relaxed); }
inline uint64_t total() { return counter().load(std::memory_order_relaxed); }

}  // namespace joule::flops
