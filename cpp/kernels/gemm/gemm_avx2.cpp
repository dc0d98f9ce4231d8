// AVX2 + FMA kernels: a 6x16 micro-kernel (12 ymm accumulators + 2 B vectors + 1 broadcast of the
// 16 architectural ymm registers), GEMV and the vectorized epilogue.
// The library is built without -march flags, so this file enables AVX2/FMA itself for its kernels
// only; the driver calls them only when joule::active_isa() >= Isa::Avx2.
#include <cstdint>

#include "kernels/gemm/internal.h"

#if defined(__x86_64__)

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include <immintrin.h>

namespace joule::gemm::detail {

#include "kernels/gemm/simd_kernels.inc"

namespace {

const IsaKernels kAvx2Kernels = {
    "avx2-6x16",
    6,
    16,
    micro_kernel<Ymm, 6, 2, 0, false>,
    micro_kernel<Ymm, 6, 2, 0, true>,
    nullptr,
    nullptr,
    /*vector_width=*/8,
    {nullptr, micro_kernel<Ymm, 6, 1, 0, false>, nullptr, nullptr},
    {nullptr, micro_kernel<Ymm, 6, 1, 0, true>, nullptr, nullptr},
    /*kc=*/256,
    /*mc=*/144,
    /*nc=*/2048,
    /*kc_in_place=*/256,
    /*b_block_in_place=*/256 * 2048,
    LoopOrder::ColumnPanelOuter,
    gemv_rows<Ymm>,
    gemv_cols<Ymm>,
    merge_row<Ymm>,
    pack_transposed_simd,
    pack_steps_simd,
    transpose_simd,
    gelu_row<Ymm>,
    gelu_grad_row<Ymm>,
};

}  // namespace

const IsaKernels* avx2_kernels() { return &kAvx2Kernels; }

}  // namespace joule::gemm::detail

#pragma GCC pop_options

#else  // not x86-64: no AVX2 code; the driver stays on the generic kernels.

namespace joule::gemm::detail {
const IsaKernels* avx2_kernels() { return nullptr; }
}  // namespace joule::gemm::detail

#endif
