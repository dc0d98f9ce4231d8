// The vector FMA chains of the peak benchmark, one per instruction set.
#include <cstdint>

#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#include <immintrin.h>

namespace joule::energy {

float fma_chains_avx2(int64_t iters, float seed) {
  __m256 acc[16];
  for (int k = 0; k < 16; ++k) acc[k] = _mm256_set1_ps(seed + static_cast<float>(k));
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int k = 0; k < 16; ++k) acc[k] = _mm256_fmadd_ps(acc[k], m, c);
  }
  __m256 s = acc[0];
  for (int k = 1; k < 16; ++k) s = _mm256_add_ps(s, acc[k]);
  return _mm256_cvtss_f32(s);
}

float fma_chains_avx512(int64_t iters, float seed) {
  __m512 acc[16];
  for (int k = 0; k < 16; ++k) acc[k] = _mm512_set1_ps(seed + static_cast<float>(k));
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int k = 0; k < 16; ++k) acc[k] = _mm512_fmadd_ps(acc[k], m, c);
  }
  __m512 s = acc[0];
  for (int k = 1; k < 16; ++k) s = _mm512_add_ps(s, acc[k]);
  return _mm512_reduce_add_ps(s);
}

}  // namespace joule::energy

#pragma GCC pop_options
#endif
