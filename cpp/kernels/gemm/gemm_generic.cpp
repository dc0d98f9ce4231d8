// Portable kernels in plain C++ (no intrinsics): the fallback for any CPU. The fixed-size loops
// let the compiler keep the 4x8 accumulator block in registers and vectorize with whatever the
// baseline target offers (SSE2 on x86-64).
#include <cstdint>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/internal.h"

namespace joule::gemm::detail {
namespace {

constexpr int kGenericMr = 4;
constexpr int kGenericNr = 8;

// A(r, p) = a[r * a_rs + p * a_cs]: the steps kernel passes (1, a_stride), the rows kernel (a_stride, 1).
void generic_tile(int64_t kc, const float* a, int64_t a_rs, int64_t a_cs, const float* b, int64_t b_stride, float* c,
                  int64_t c_rs, int64_t c_cs, int rows, int cols, const TileEpilogue& ep) {
  float acc[kGenericMr][kGenericNr] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int r = 0; r < kGenericMr; ++r) {
      const float ar = a[r * a_rs + p * a_cs];
      for (int j = 0; j < kGenericNr; ++j) acc[r][j] += ar * b[j];
    }
    b += b_stride;
  }
  merge_tile_scalar(&acc[0][0], kGenericNr, c, c_rs, c_cs, rows, cols, ep);
}

void generic_micro_kernel(int64_t kc, const float* a, int64_t a_stride, const float* b, int64_t b_stride, float* c,
                          int64_t c_rs, int64_t c_cs, int rows, int cols, const TileEpilogue& ep) {
  generic_tile(kc, a, 1, a_stride, b, b_stride, c, c_rs, c_cs, rows, cols, ep);
}

void generic_micro_kernel_rows(int64_t kc, const float* a, int64_t a_stride, const float* b, int64_t b_stride,
                               float* c, int64_t c_rs, int64_t c_cs, int rows, int cols, const TileEpilogue& ep) {
  generic_tile(kc, a, a_stride, 1, b, b_stride, c, c_rs, c_cs, rows, cols, ep);
}

void generic_gemv_rows(int64_t k, int64_t n, const float* x, const float* b, int64_t b_rs, float* y) {
  for (int64_t j = 0; j < n; ++j) y[j] = 0.0f;
  for (int64_t p = 0; p < k; ++p) {
    const float xp = x[p];
    const float* row = b + p * b_rs;
    for (int64_t j = 0; j < n; ++j) y[j] += xp * row[j];
  }
}

void generic_gemv_cols(int64_t k, int64_t n, const float* x, const float* b, int64_t b_cs, float* y) {
  for (int64_t j = 0; j < n; ++j) {
    const float* col = b + j * b_cs;
    float acc = 0.0f;
    for (int64_t p = 0; p < k; ++p) acc += x[p] * col[p];
    y[j] = acc;
  }
}

void generic_merge_row(const float* acc, float* c, int64_t n, const TileEpilogue& ep) {
  merge_tile_scalar(acc, 0, c, 0, 1, 1, n, ep);
}

void generic_gelu_row(const float* x, float* y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) y[j] = gelu(x[j]);
}

void generic_gelu_grad_row(const float* dy, const float* z, float* dz, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dz[j] = dy[j] * gelu_grad(z[j]);
}

const IsaKernels kGenericKernels = {
    "generic-4x8",
    kGenericMr,
    kGenericNr,
    generic_micro_kernel,
    generic_micro_kernel_rows,
    nullptr,
    nullptr,
    /*vector_width=*/kGenericNr,  // no narrow kernels
    {},
    {},
    /*kc=*/256,
    /*mc=*/128,
    /*nc=*/1024,
    /*kc_in_place=*/256,
    /*b_block_in_place=*/256 * 1024,
    LoopOrder::ColumnPanelOuter,
    generic_gemv_rows,
    generic_gemv_cols,
    generic_merge_row,
    pack_transposed_scalar,
    pack_steps_scalar,
    transpose_scalar,
    generic_gelu_row,
    generic_gelu_grad_row,
};

}  // namespace

const IsaKernels* generic_kernels() { return &kGenericKernels; }

}  // namespace joule::gemm::detail
