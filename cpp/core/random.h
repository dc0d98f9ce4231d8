// Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"): a counter-based
// generator, so element i of a draw depends only on (seed, offset + i / 4) — the same numbers on
// every machine and for every thread count.
#pragma once
#include <array>
#include <cstdint>

namespace joule {

std::array<uint32_t, 4> philox(uint64_t seed, uint64_t counter);

// 24 random bits as a float in [0, 1).
inline float uniform01(uint32_t bits) { return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f); }

}  // namespace joule
