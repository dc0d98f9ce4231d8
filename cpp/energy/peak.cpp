#include <chrono>
#include <cstdint>
#include <vector>

#include "core/cpu_features.h"
#include "core/threadpool.h"
#include "energy/meters.h"

namespace joule::energy {
namespace {

// 16 independent accumulator chains hide the FMA latency; each call does `iters` rounds.
float fma_chains_generic(int64_t iters, float seed) {
  float acc[16];
  for (int k = 0; k < 16; ++k) acc[k] = seed + static_cast<float>(k);
  for (int64_t i = 0; i < iters; ++i) {
    for (int k = 0; k < 16; ++k) acc[k] = acc[k] * 0.999999f + 1e-7f;
  }
  float s = 0;
  for (float v : acc) s += v;
  return s;
}

}  // namespace

float fma_chains_avx2(int64_t iters, float seed);
float fma_chains_avx512(int64_t iters, float seed);

double cpu_fma_peak(int threads, double seconds) {
  Isa isa = active_isa();
  const int lanes = isa == Isa::Avx512 ? 16 : isa == Isa::Avx2 ? 8 : 1;
  auto chains = [isa](int64_t iters, float seed) {
#if defined(__x86_64__)
    if (isa == Isa::Avx512) return fma_chains_avx512(iters, seed);
    if (isa == Isa::Avx2) return fma_chains_avx2(iters, seed);
#endif
    return fma_chains_generic(iters, seed);
  };
  // Calibrate the iteration count on one thread, then run all threads at once.
  int64_t iters = 1 << 16;
  for (;;) {
    auto t0 = std::chrono::steady_clock::now();
    volatile float sink = chains(iters, 1.0f);
    (void)sink;
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (dt > seconds / 4 || iters > (int64_t{1} << 34)) break;
    iters *= 2;
  }
  double best = 0;
  // The best of several runs: on a shared (virtual) machine, noise can only make a run slower.
  for (int rep = 0; rep < 7; ++rep) {
    std::vector<float> sinks(static_cast<size_t>(threads));
    auto t0 = std::chrono::steady_clock::now();
    run_parallel(threads, [&](int w, int) { sinks[w] = chains(iters, static_cast<float>(w)); });
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    int used = threads < num_threads() ? threads : num_threads();
    double flops = static_cast<double>(iters) * 16 * lanes * 2 * used;
    if (flops / dt > best) best = flops / dt;
  }
  return best;
}

}  // namespace joule::energy
