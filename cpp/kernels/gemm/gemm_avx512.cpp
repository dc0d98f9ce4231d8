// AVX-512 kernels (F/BW/VL/DQ + FMA): the zmm micro-kernel, GEMV and the vectorized epilogue.
// The library is built without -march flags, so this file enables the ISA itself for its kernels
// only; the driver calls them only when joule::active_isa() is Avx512.
//
// Kernel choice: see the measurements in the comment above kAvx512.
#include <cstdint>

#include "kernels/gemm/internal.h"

#if defined(__x86_64__)

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
// gcc 12 reports a false -Wmaybe-uninitialized inside its own _mm512_undefined_ps() (the
// self-initialised `__Y = __Y` behind every unmasked AVX-512 intrinsic; GCC PR 105593, fixed in 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

namespace joule::gemm::detail {

namespace {

struct Zmm {
  using reg = __m512;
  static constexpr int width = 16;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static reg set1(float x) { return _mm512_set1_ps(x); }
  static reg broadcast(const float* p) { return _mm512_set1_ps(*p); }  // folds into an FMA {1to16} operand
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg div(reg a, reg b) { return _mm512_div_ps(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg fnmadd(reg a, reg b, reg c) { return _mm512_fnmadd_ps(a, b, c); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static reg min(reg a, reg b) { return _mm512_min_ps(a, b); }
  static reg abs(reg a) { return _mm512_abs_ps(a); }
  static reg round_nearest(reg a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static reg pow2(reg n) {
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_castsi512_ps(bits);
  }
  static reg select_negative(reg x, reg if_negative, reg otherwise) {
    __mmask16 negative = _mm512_movepi32_mask(_mm512_castps_si512(x));
    return _mm512_mask_blend_ps(negative, otherwise, if_negative);
  }
  static float reduce_add(reg v) {
    __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

}  // namespace

#include "kernels/gemm/simd_kernels.inc"

namespace {

// The micro-kernel: 6 rows x 64 columns (4 zmm) of accumulators, A micro-panel in L1, the packed
// B block streaming from L2 with a prefetch 14 steps ahead (1.3-2 % faster at 1024^3, 2048^3 and
// 256x1024x1024 than 8 steps on one thread, alternated call by call; 24 steps: no better than 8).
//
// How it was chosen (development VM: 2 vCPUs reporting Intel family 6 model 106, Ice Lake-SP, not
// the Zen 4 the project brief describes; other jobs shared the VM, so numbers are best-of rounds):
// - FMA throughput probe (12 independent chains), one core: ymm 84-110 GFLOP/s, zmm 132-178.
//   This CPU has two 512-bit FMA units: zmm wins by ~1.6x.
// - Full sgemm, 1 thread, GFLOP/s at 512^3 / 1024^3 / 256x1024x1024 / 2048^3:
//     zmm 6x64, A panel in L1, B block from L2 (KC 320, NC 640)  127-143 / 119-135 / 122-128 / 131-136
//     zmm 8x48, same loop order (KC 256, NC 768)                 128-138 / 120-125 / 102-105 / 100-132
//     zmm 14x32, BLIS order (B micro-panel in L1, KC 192)        108-113 /  97-101 /  91-107 /  81-97
//     ymm 14x16 (AVX-512VL: 32 registers)                         65     /  70
//   numpy/OpenBLAS in the same runs: 512^3 ~91, 1024^3 ~88-117, 256x1024x1024 ~79-93.
// - The 6x64 micro-kernel alone (A panel in L1, 320x640 B block in L2): 137 GFLOP/s with B
//   prefetched 8 steps ahead, 129 without, while the FMA probe read 147 (93%).
// The losing variants were removed once measured (git history has them). On Zen 4 (zmm FMAs
// double-pumped: same FLOP rate as ymm) the 6x64 zmm kernel gives up no FMA rate and needs a
// third of the loads per flop of a 6x16 ymm kernel, so it should remain the right choice there;
// JOULE_ISA=avx2 selects the pure AVX2 6x16 kernel for comparison.
//
// The same kernel also reads a row-major A in place (the rows variant; K block 1024 then, see
// kc_in_place: C is merged half as often as with 512 at K = 1024, while the A micro-panel, 6 x
// 1024 floats, still fits L1 beside the streamed B; paired call by call against 512, 1 thread:
// 1024^3 1.016-1.019x, 2048^3 1.022x, 1000^3 1.028x, 256x1024x1024 NT 1.019-1.027x, 256x784x1024
// NT 1.039x; 2 threads 1.018-1.075x at 512^3-4096^3 and the MLP shapes; 128x4096x512 0.97-0.99x;
// 2048 was worse at 4096^3, 0.98x), and 6x16 / 6x32 / 6x48 versions of it take a narrow last
// column panel (n = 80: 16 columns). At the GPT training shapes (M = 4096, K = 128-512, N = 128-512, and the weight
// gradients 128-512 x 4096 x 128-512) these took the products from 35-55 % to 45-70 % of the FMA
// peak on 2 threads (docs/AS-BUILT.md, fp32 GEMM).
// With A read in place the packed B block is 512 KiB (b_block_in_place: 128 columns at K block
// 1024) rather than the 768 KiB of KC x NC: A is streamed once more per 128 columns, but the block
// leaves L2 room for A's next panel and C; paired call by call against 192 columns, 1 thread:
// 256x1024x1024 NT 1.029-1.076x, 256x784x1024 1.017x, 4096x512x512 NT 1.05x, 1024^3-4096^3
// 0.99-1.05x; 2 threads 1.00-1.04x (64 columns: 0.97-0.98x at 1024^3-2048^3).
const IsaKernels kAvx512 = {
    "avx512-zmm-6x64-pf14",
    6,
    64,
    micro_kernel<Zmm, 6, 4, 14, false>,
    micro_kernel<Zmm, 6, 4, 14, true>,
    packing_micro_kernel<Zmm, 6, 4, 8, false>,
    packing_micro_kernel<Zmm, 6, 4, 8, true>,
    /*vector_width=*/16,
    {nullptr, micro_kernel<Zmm, 6, 1, 8, false>, micro_kernel<Zmm, 6, 2, 8, false>, micro_kernel<Zmm, 6, 3, 8, false>},
    {nullptr, micro_kernel<Zmm, 6, 1, 8, true>, micro_kernel<Zmm, 6, 2, 8, true>, micro_kernel<Zmm, 6, 3, 8, true>},
    /*kc=*/320,
    /*mc=*/120,
    /*nc=*/640,
    /*kc_in_place=*/1024,
    /*b_block_in_place=*/128 * 1024,
    LoopOrder::RowPanelOuter,
    gemv_rows<Zmm>,
    gemv_cols<Zmm>,
    merge_row<Zmm>,
    pack_transposed_simd,
    pack_steps_simd,
    transpose_simd,
    gelu_row<Zmm>,
    gelu_grad_row<Zmm>,
};

}  // namespace

const IsaKernels* avx512_kernels() { return &kAvx512; }

}  // namespace joule::gemm::detail

#pragma GCC diagnostic pop
#pragma GCC pop_options

#else  // not x86-64: no AVX-512 code; the driver stays on the generic kernels.

namespace joule::gemm::detail {
const IsaKernels* avx512_kernels() { return nullptr; }
}  // namespace joule::gemm::detail

#endif
