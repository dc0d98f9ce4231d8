// Private interface between the int8 GEMM driver (quant.cpp) and its per-ISA kernel files.
#pragma once
#include <cstdint>

#include "kernels/quant/quant.h"

namespace joule::quant::detail {

// What a micro-kernel needs to finish its tile. Pointers are already offset to the tile's first
// row / column; col_* arrays are padded to whole panels (64 columns), so full-vector loads are safe.
struct TileOut {
  float* c_f32 = nullptr;
  int32_t* c_i32 = nullptr;
  int64_t c_rs = 0;
  const float* row_scales = nullptr;  // one per tile row
  const float* col_scales = nullptr;
  const int32_t* col_sums = nullptr;  // 128 * col_sums[j] is subtracted (activations are shifted by +128)
  const float* bias = nullptr;        // padded, or null
  gemm::Activation activation = gemm::Activation::None;
  bool accumulate = false;
};

// How A is packed for a kernel: panels of `mr` rows; for each group g of 4 k values, mr x 4
// elements (row-major within the group): element (g, r, t) = A(r, 4g + t) + 128, zero-padded
// (i.e. 128) beyond K. As uint8 (VNNI, generic) or as int16 (AVX2, whose vpmaddwd multiplies int16).
enum class AFormat { U8, I16 };

// A micro-kernel computes the rows x cols tile (rows <= mr, cols <= 64) of one packed A panel
// times one packed weight panel over `groups` groups of 4 k values, and writes it through TileOut.
using MicroKernel = void (*)(int64_t groups, const void* a_panel, const int8_t* w_panel, int rows, int cols,
                             const TileOut& out);

// Quantizes one fp32 row (scale = absmax/127 or static_scale > 0) into k shifted bytes
// (q + 128, uint8) and returns the scale (NaN for a row with NaN/Inf; its bytes are then 128).
using QuantizeRowKernel = float (*)(const float* x, int64_t k, float static_scale, uint8_t* q_shifted);

struct IsaKernels {
  const char* name;
  int mr;
  AFormat a_format;
  MicroKernel micro_kernel;
  QuantizeRowKernel quantize_row;
};

const IsaKernels* generic_kernels();
const IsaKernels* avx2_kernels();
const IsaKernels* avx512_vnni_kernels();  // null when not compiled for x86-64

// The epilogue of one int32 tile (row stride acc_rs), shared by the generic and AVX2 kernels and
// by the AVX-512 column tails: exactly the operation order of the reference.
void epilogue_scalar(const int32_t* acc, int64_t acc_rs, int rows, int cols, const TileOut& out);

// The scalar row quantizer (generic and AVX2 paths).
float quantize_row_scalar(const float* x, int64_t k, float static_scale, uint8_t* q_shifted);

}  // namespace joule::quant::detail
