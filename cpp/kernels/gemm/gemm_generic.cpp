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

void generic_micro_kernel(int64_t kc, const float* a, const float* b, float* c, int64_t c_rs, int64_t c_cs, int rows,
                          int cols, const TileEpilogue& ep) {
  float acc[kGenericMr][kGenericNr] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int r = 0; r < kGenericMr; ++r) {
      const float ar = a[r];
      for (int j = 0; j < kGenericNr; ++j) acc[r][j] += ar * b[j];
    }
    a += kGenericMr;
    b += kGenericNr;
  }
  merge_tile_scalar(&acc[0][0], kGenericNr, c, c_rs, c_cs, rows, cols, ep);
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
    /*kc=*/256,
    /*mc=*/128,
    /*nc=*/1024,
    LoopOrder::ColumnPanelOuter,
    generic_gemv_rows,
    generic_gemv_cols,
    generic_merge_row,
    pack_transposed_scalar,
    generic_gelu_row,
    generic_gelu_grad_row,
};

}  // namespace

const IsaKernels* generic_kernels() { return &kGenericKernels; }

}  // namespace joule::gemm::detail
