// AVX-512 VNNI kernels for the int8 GEMM: the vpdpbusd micro-kernel (6 rows x up to 64 columns,
// 24 zmm accumulators), its vectorized dequantizing epilogue, and the fused row quantizer that
// packs fp32 activations as shifted bytes. The library is built without -march flags: this file
// enables the ISA for its own code only, and the driver calls it only when active_isa() is Avx512
// and the CPU has avx512vnni.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/quant/internal.h"

#if defined(__x86_64__)

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma")
// gcc 12's false -Wmaybe-uninitialized inside its own _mm512_undefined_* (GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

namespace joule::quant::detail {
namespace {

constexpr int kMr = 6;
// Weight panel prefetch distance, in groups of 4 k values (256 bytes each).
constexpr int kPrefetchGroups = 8;

// exp(x) for the GELU epilogue: x = n ln2 + r, |r| <= ln2/2, degree-6 Taylor polynomial, x clamped
// to [-87, 88] so 2^n stays normal (the same scheme as the fp32 GEMM's epilogue).
inline __m512 exp_approx(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

// gelu(x) = x (1 - erfc(|x|/sqrt2)/2) for x >= 0, x erfc(|x|/sqrt2)/2 for x < 0, with erfc from the
// Chebyshev fit of Numerical Recipes (erfcc, fractional error < 1.2e-7); max abs error ~2e-7.
inline __m512 gelu_approx(__m512 x) {
  const __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752f));
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(z, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f)));
  __m512 p = _mm512_set1_ps(0.17087277f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.82215223f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f));
  const __m512 erfc = _mm512_mul_ps(t, exp_approx(_mm512_fnmadd_ps(z, z, p)));
  const __m512 half_x = _mm512_mul_ps(x, _mm512_set1_ps(0.5f));
  const __m512 negative = _mm512_mul_ps(half_x, erfc);
  const __m512 positive = _mm512_fnmadd_ps(half_x, erfc, x);
  return _mm512_mask_blend_ps(_mm512_movepi32_mask(_mm512_castps_si512(x)), positive, negative);
}

inline __mmask16 column_mask(int cols, int v) {
  const int left = cols - v * 16;
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
}

template <int R, int NV, int PF = kPrefetchGroups>
void vnni_tile(int64_t groups, const uint8_t* a, const int8_t* w, int cols, const TileOut& out) {
  __m512i acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_si512();
  }
  for (int64_t g = 0; g < groups; ++g) {
    __m512i b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      if (PF > 0) _mm_prefetch(reinterpret_cast<const char*>(w + PF * 256 + v * 64), _MM_HINT_T0);
      b[v] = _mm512_loadu_si512(w + v * 64);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      int32_t quad;
      std::memcpy(&quad, a + r * 4, 4);
      const __m512i av = _mm512_set1_epi32(quad);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], av, b[v]);
    }
    a += kMr * 4;
    w += 256;
  }
  // The accumulators leave the registers once, through memory, so that gcc keeps them in
  // registers for the whole K loop (addressing the array in the epilogue made it spill per step).
  alignas(64) int32_t tile[R][NV * 16];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm512_store_si512(&tile[r][v * 16], acc[r][v]);
  }
  // Epilogue: remove the +128 shift, then row scale x column scale (+ C) + bias, activation.
  for (int v = 0; v < NV; ++v) {
    const __mmask16 mask = column_mask(cols, v);
    const __m512i correction = _mm512_slli_epi32(_mm512_loadu_si512(out.col_sums + v * 16), 7);
    if (out.c_i32 != nullptr) {
      for (int r = 0; r < R; ++r) {
        const __m512i a = _mm512_load_si512(&tile[r][v * 16]);
        _mm512_mask_storeu_epi32(out.c_i32 + r * out.c_rs + v * 16, mask, _mm512_sub_epi32(a, correction));
      }
      continue;
    }
    const __m512 col_scale = _mm512_loadu_ps(out.col_scales + v * 16);
    const __m512 bias = out.bias != nullptr ? _mm512_loadu_ps(out.bias + v * 16) : _mm512_setzero_ps();
    for (int r = 0; r < R; ++r) {
      float* c = out.c_f32 + r * out.c_rs + v * 16;
      __m512 f = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_load_si512(&tile[r][v * 16]), correction));
      f = _mm512_mul_ps(f, _mm512_set1_ps(out.row_scales[r]));
      f = _mm512_mul_ps(f, col_scale);
      if (out.accumulate) f = _mm512_add_ps(f, _mm512_maskz_loadu_ps(mask, c));
      if (out.bias != nullptr) f = _mm512_add_ps(f, bias);
      if (out.activation == gemm::Activation::Relu) {
        f = _mm512_max_ps(_mm512_setzero_ps(), f);  // NaN stays NaN
      } else if (out.activation == gemm::Activation::Gelu) {
        f = gelu_approx(f);
      }
      _mm512_mask_storeu_ps(c, mask, f);
    }
  }
}

using Tile = void (*)(int64_t, const uint8_t*, const int8_t*, int, const TileOut&);

template <int R, int PF = kPrefetchGroups>
constexpr Tile tile_for(int nv) {
  return nv == 1 ? vnni_tile<R, 1, PF> : nv == 2 ? vnni_tile<R, 2, PF> : nv == 3 ? vnni_tile<R, 3, PF> : vnni_tile<R, 4, PF>;
}

const Tile kTiles[kMr][4] = {
    {tile_for<1>(1), tile_for<1>(2), tile_for<1>(3), tile_for<1>(4)},
    {tile_for<2>(1), tile_for<2>(2), tile_for<2>(3), tile_for<2>(4)},
    {tile_for<3>(1), tile_for<3>(2), tile_for<3>(3), tile_for<3>(4)},
    {tile_for<4>(1), tile_for<4>(2), tile_for<4>(3), tile_for<4>(4)},
    {tile_for<5>(1), tile_for<5>(2), tile_for<5>(3), tile_for<5>(4)},
    {tile_for<6>(1), tile_for<6>(2), tile_for<6>(3), tile_for<6>(4)},
};

// Exactly `rows` rows and ceil(cols / 16) vectors: edge tiles waste no multiply-adds (M = 1 is a
// 1-row kernel streaming the weight panel, the GEMV case).
void vnni_micro_kernel(int64_t groups, const void* a_panel, const int8_t* w, int rows, int cols, const TileOut& out) {
  kTiles[rows - 1][(cols + 15) / 16 - 1](groups, static_cast<const uint8_t*>(a_panel), w, cols, out);
}

// Row quantizer: one pass for absmax and the finiteness check, one pass to quantize
// (vcvtps2dq rounds to nearest even) and store q + 128 as bytes (vpmovdb).
float quantize_row_avx512(const float* x, int64_t k, float static_scale, uint8_t* q) {
  __m512 vmax = _mm512_setzero_ps();
  __mmask16 bad = 0;
  const __m512 big = _mm512_set1_ps(FLT_MAX);
  int64_t p = 0;
  for (; p + 16 <= k; p += 16) {
    const __m512 a = _mm512_abs_ps(_mm512_loadu_ps(x + p));
    vmax = _mm512_max_ps(vmax, a);
    bad |= _mm512_cmp_ps_mask(a, big, _CMP_NLE_UQ);  // NaN or Inf
  }
  if (p < k) {
    const __mmask16 m = static_cast<__mmask16>((1u << (k - p)) - 1u);
    const __m512 a = _mm512_abs_ps(_mm512_maskz_loadu_ps(m, x + p));
    vmax = _mm512_max_ps(vmax, a);
    bad |= _mm512_cmp_ps_mask(a, big, _CMP_NLE_UQ);
  }
  if (bad != 0) {
    std::memset(q, 0x80, static_cast<size_t>(k));
    return NAN;
  }
  float scale = static_scale > 0.0f ? static_scale : _mm512_reduce_max_ps(vmax) / 127.0f;
  float inv = 1.0f / scale;
  if (!(inv <= FLT_MAX)) {
    scale = 0.0f;
    inv = 0.0f;
  }
  const __m512 vinv = _mm512_set1_ps(inv);
  const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  const __m512i shift = _mm512_set1_epi32(128);
  for (p = 0; p < k; p += 16) {
    const __mmask16 m = k - p >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (k - p)) - 1u);
    __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + p), vinv);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    const __m512i i = _mm512_add_epi32(_mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), shift);
    _mm512_mask_cvtepi32_storeu_epi8(q + p, m, i);
  }
  return scale;
}

const IsaKernels kVnni = {"avx512-vnni", kMr, AFormat::U8, vnni_micro_kernel, quantize_row_avx512};

}  // namespace

const IsaKernels* avx512_vnni_kernels() { return &kVnni; }

}  // namespace joule::quant::detail

#pragma GCC diagnostic pop
#pragma GCC pop_options

#else

namespace joule::quant::detail {
const IsaKernels* avx512_vnni_kernels() { return nullptr; }
}  // namespace joule::quant::detail

#endif
