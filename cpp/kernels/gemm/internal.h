// Private interface between the GEMM driver (gemm.cpp) and the per-ISA kernel files.
// Nothing here is part of the library's API.
#pragma once
#include <cstdint>

#include "kernels/gemm/gemm.h"

namespace joule::gemm::detail {

// How a block of freshly computed dot products `acc` is merged into C:
//   C = alpha * acc + beta * C   (C not read when beta == 0), then + bias[j] (or + row_bias[i]),
//   then the activation.
// The driver splits K into blocks: the first block carries the caller's beta, later blocks
// beta = 1, and only the last block carries bias and activation.
struct TileEpilogue {
  float alpha = 1.0f;
  float beta = 0.0f;
  const float* bias = nullptr;      // per-column bias, from the tile's first column, or null
  const float* row_bias = nullptr;  // per-row bias, from the tile's first row, or null (used when
                                    // the driver computes C^T = B^T A^T for a narrow C)
  Activation activation = Activation::None;
};

// A register-tiled micro-kernel. a_panel holds kc steps of MR floats (one per row),
// b_panel kc steps of NR floats (one per column), both packed and 64-byte aligned.
// It computes the MR x NR block of dot products and merges the top-left rows x cols part of it
// into C (rows <= MR, cols <= NR; the packed panels are zero-padded beyond them).
using MicroKernel = void (*)(int64_t kc, const float* a_panel, const float* b_panel, float* c, int64_t c_rs,
                             int64_t c_cs, int rows, int cols, const TileEpilogue& ep);

// y[j] = sum_p x[p] * B(p, j) for j < n, with B's columns contiguous (b_cs == 1) ...
using GemvRowsKernel = void (*)(int64_t k, int64_t n, const float* x, const float* b, int64_t b_rs, float* y);
// ... or with B's rows contiguous (b_rs == 1): y[j] = dot(x, b + j * b_cs).
using GemvColsKernel = void (*)(int64_t k, int64_t n, const float* x, const float* b, int64_t b_cs, float* y);
// Merges n contiguous dot products into a contiguous row of C (epilogue as for tiles).
using MergeRowKernel = void (*)(const float* acc, float* c, int64_t n, const TileEpilogue& ep);

// The order of the two innermost loops around the micro-kernel.
enum class LoopOrder {
  ColumnPanelOuter,  // BLIS: one B micro-panel (KC x NR) stays in L1 while A micro-panels stream from L2
  RowPanelOuter,     // one A micro-panel (MR x KC) stays in L1 while the B block streams from L2
};

// Packing of a transposed operand: `rows` source rows, each contiguous over kc elements and
// `stride` apart, go to dst[p * width + r] (r < width; lanes rows..width-1 are zeroed). Packs A
// when it is row-major (rows = MR rows of A) and B when it is column-major (rows = NR columns).
using PackTransposedKernel = void (*)(const float* src, int64_t stride, int rows, int64_t kc, int width, float* dst);

// The GELU of the epilogue over n contiguous floats (y = gelu(x)), and its derivative
// (dz = dy * gelu'(z)): the elementwise op and the fused linear's backward use them.
using GeluRowKernel = void (*)(const float* x, float* y, int64_t n);
using GeluGradRowKernel = void (*)(const float* dy, const float* z, float* dz, int64_t n);

// Everything one instruction set contributes, plus the cache blocking tuned for its micro-kernel.
struct IsaKernels {
  const char* name;
  int mr, nr;
  MicroKernel micro_kernel;
  int64_t kc, mc, nc;  // K block (panels in L1/L2), M block (packed A), N block (packed B)
  LoopOrder order;
  GemvRowsKernel gemv_rows;
  GemvColsKernel gemv_cols;
  MergeRowKernel merge_row;
  PackTransposedKernel pack_transposed;
  GeluRowKernel gelu_row;
  GeluGradRowKernel gelu_grad_row;
};

// Each returns null when its file was compiled without that instruction set (non-x86 hosts).
const IsaKernels* generic_kernels();
const IsaKernels* avx2_kernels();
const IsaKernels* avx512_kernels();

// The scalar merge every ISA uses for edge tiles and for C with a non-unit column stride.
void merge_tile_scalar(const float* acc, int64_t acc_rs, float* c, int64_t c_rs, int64_t c_cs, int64_t rows,
                       int64_t cols, const TileEpilogue& ep);

// The plain C++ transposed packing (generic kernels; tails of the SIMD ones).
void pack_transposed_scalar(const float* src, int64_t stride, int rows, int64_t kc, int width, float* dst);

}  // namespace joule::gemm::detail
