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

// A register-tiled micro-kernel. It computes the MR x NR block of dot products over kc steps and
// merges the top-left rows x cols part of it into C (rows <= MR, cols <= NR). B is read as
// B(p, j) = b[p * b_stride + j] and A, depending on the kernel, as
//   steps: A(r, p) = a[p * a_stride + r]  (a packed micro-panel: a_stride = MR)
//   rows:  A(r, p) = a[r * a_stride + p]  (row-major A, read in place)
// All MR rows and all the kernel's columns are read: partial panels are packed with zero padding.
using MicroKernel = void (*)(int64_t kc, const float* a, int64_t a_stride, const float* b, int64_t b_stride, float* c,
                             int64_t c_rs, int64_t c_cs, int rows, int cols, const TileEpilogue& ep);

// The same product while packing B: B is read in place (b_stride: its row stride) and each step's
// NR values are also stored to b_packed[p * NR + j], the tile's packed micro-panel, so that the
// first row panel of a block packs B as it goes instead of a separate pass before it.
using PackingMicroKernel = void (*)(int64_t kc, const float* a, int64_t a_stride, const float* b, int64_t b_stride,
                                    float* b_packed, float* c, int64_t c_rs, int64_t c_cs, int rows, int cols,
                                    const TileEpilogue& ep);

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

// Packing of an operand whose `rows` values of a step are contiguous and steps `stride` apart
// (column-major A, row-major B), all panels at once: panel q of ceil(rows / width) at
// dst + q * kc * width holds, for each p in order, the width values src[p * stride + q * width + r],
// zero past `rows`.
using PackStepsKernel = void (*)(const float* src, int64_t stride, int rows, int64_t kc, int width, float* dst);

// A plain transpose: dst[c * dst_rs + r] = src[r * src_rs + c] for r < rows, c < cols (the
// scratch C^T of x W^T into C).
using TransposeKernel = void (*)(const float* src, int64_t src_rs, int64_t rows, int64_t cols, float* dst, int64_t dst_rs);

// The GELU of the epilogue over n contiguous floats (y = gelu(x)), and its derivative
// (dz = dy * gelu'(z)): the elementwise op and the fused linear's backward use them.
using GeluRowKernel = void (*)(const float* x, float* y, int64_t n);
using GeluGradRowKernel = void (*)(const float* dy, const float* z, float* dz, int64_t n);

// Everything one instruction set contributes, plus the cache blocking tuned for its micro-kernel.
struct IsaKernels {
  const char* name;
  int mr, nr;
  MicroKernel micro_kernel;       // A in steps (packed panels)
  MicroKernel micro_kernel_rows;  // A in rows (row-major A read in place)
  // Both again, packing a row-major B on the way (null: B is packed before the block).
  PackingMicroKernel packing_micro_kernel, packing_micro_kernel_rows;
  // For the last column panel when it is narrow: kernels computing only the first v * vector_width
  // columns of the tile (B still packed NR wide), [v] for v = 1 .. NR / vector_width - 1; null
  // where there is none (the full kernel then runs on the zero padding).
  int vector_width;
  MicroKernel narrow[4], narrow_rows[4];
  int64_t kc, mc, nc;  // K block (panels in L1/L2), M block (packed A), N block (packed B)
  int64_t kc_in_place;  // K block when A is row-major and read in place ...
  int64_t b_block_in_place;  // ... and the floats of a packed B block then (NC = this / K block)
  LoopOrder order;
  GemvRowsKernel gemv_rows;
  GemvColsKernel gemv_cols;
  MergeRowKernel merge_row;
  PackTransposedKernel pack_transposed;
  PackStepsKernel pack_steps;
  TransposeKernel transpose;
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

// The plain C++ packings (generic kernels; tails of the SIMD ones).
void pack_transposed_scalar(const float* src, int64_t stride, int rows, int64_t kc, int width, float* dst);
void pack_steps_scalar(const float* src, int64_t stride, int rows, int64_t kc, int width, float* dst);
void transpose_scalar(const float* src, int64_t src_rs, int64_t rows, int64_t cols, float* dst, int64_t dst_rs);

}  // namespace joule::gemm::detail
