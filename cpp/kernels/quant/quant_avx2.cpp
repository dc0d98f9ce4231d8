// AVX2 kernel for the int8 GEMM. vpmaddubsw would saturate its int16 pair sums (255 * 127 * 2 >
// 32767), so this path widens instead: the shifted activations are packed as int16 (AFormat::I16),
// the weight bytes are sign-extended on load (vpmovsxbw), and vpmaddwd sums int16 pairs into
// int32 lanes exactly. Each int32 lane holds half of a column's 4-term group; the halves are
// added (vphaddd) once, after the K loop.
#include <cstdint>
#include <cstring>

#include "kernels/quant/internal.h"

#if defined(__x86_64__)

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include <immintrin.h>

namespace joule::quant::detail {
namespace {

constexpr int kMr = 3;

// One 16-column chunk (4 vectors of 4 columns x 2 half-sums) for R rows.
template <int R>
void avx2_chunk(int64_t groups, const int16_t* a, const int8_t* w, int32_t* tile) {
  __m256i acc[R][4];
  for (int r = 0; r < R; ++r) {
    for (int q = 0; q < 4; ++q) acc[r][q] = _mm256_setzero_si256();
  }
  for (int64_t g = 0; g < groups; ++g) {
    __m256i av[R];
    for (int r = 0; r < R; ++r) {
      int64_t quad;
      std::memcpy(&quad, a + r * 4, 8);
      av[r] = _mm256_set1_epi64x(quad);
    }
    for (int q = 0; q < 4; ++q) {
      const __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + q * 16)));
      for (int r = 0; r < R; ++r) acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_madd_epi16(av[r], b));
    }
    a += kMr * 4;
    w += 256;
  }
  for (int r = 0; r < R; ++r) {
    const __m256i lo = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][0], acc[r][1]), 0xD8);
    const __m256i hi = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][2], acc[r][3]), 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(tile + r * 64), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(tile + r * 64 + 8), hi);
  }
}

void avx2_micro_kernel(int64_t groups, const void* a_panel, const int8_t* w, int rows, int cols, const TileOut& out) {
  alignas(64) int32_t tile[kMr * 64];
  const int16_t* a = static_cast<const int16_t*>(a_panel);
  for (int s = 0; s * 16 < cols; ++s) {
    switch (rows) {
      case 1: avx2_chunk<1>(groups, a, w + s * 64, tile + s * 16); break;
      case 2: avx2_chunk<2>(groups, a, w + s * 64, tile + s * 16); break;
      default: avx2_chunk<3>(groups, a, w + s * 64, tile + s * 16); break;
    }
  }
  epilogue_scalar(tile, 64, rows, cols, out);
}

const IsaKernels kAvx2 = {"avx2", kMr, AFormat::I16, avx2_micro_kernel, quantize_row_scalar};

}  // namespace

const IsaKernels* avx2_kernels() { return &kAvx2; }

}  // namespace joule::quant::detail

#pragma GCC pop_options

#else

namespace joule::quant::detail {
const IsaKernels* avx2_kernels() { return nullptr; }
}  // namespace joule::quant::detail

#endif
