// int8 quantization kernels: symmetric/affine quantize and dequantize, weight packing, and the
// int8 x int8 -> int32 GEMM with a fused dequantizing epilogue (row scale x column scale, + bias,
// activation, fp32 out).
//
// Conventions (the one definition every path and every test uses):
//   quantize:   q = clamp(rne(x * (1 / scale)) + zero_point, qmin, qmax)   rne = round half to even
//               (1 / scale is computed once in float; scale == 0 quantizes everything to zero_point)
//   dequantize: x = (q - zero_point) * scale
//   symmetric int8 (weights, dynamic activations): scale = absmax / 127, zero_point = 0, and the
//               range is [-127, 127] (never -128: the range stays symmetric). Quantizing with a
//               given scale saturates to the [qmin, qmax] the caller passes (e.g. [-128, 127]).
//   affine uint8: scale = (max(hi, 0) - min(lo, 0)) / 255, zero_point = rne(-min / scale) in [0, 255].
//
// The GEMM computes C(i, j) = act(row_scale[i] * col_scale[j] * sum_p A(i, p) * W(j, p) + bias[j])
// where A is int8 (given, or quantized per row on the fly from fp32 while it is packed) and W is
// the int8 weight [N, K] (PyTorch's Linear layout), packed once (PackedWeightLayout below).
// Integer accumulation is exact (int32; K <= kMaxK keeps every partial sum in range), so every
// ISA path equals the scalar reference bit for bit on the int32 result.
#pragma once
#include <cstdint>

#include "kernels/gemm/gemm.h"

namespace joule::quant {

// Columns per packed weight panel and k values per group (vpdpbusd consumes 4 bytes per lane).
constexpr int kPanelCols = 64;
constexpr int kGroup = 4;
// |sum| <= K * 255 * 128 for the shifted (uint8) activations must stay below 2^31.
constexpr int64_t kMaxK = 65536;

// Packed weight layout: panels of 64 output channels; inside a panel, for each group of 4 k values,
// 64 columns x 4 bytes (column-major within the group): byte (panel, g, c, t) = W(panel*64 + c, g*4 + t),
// zero beyond N and K. Size: ceil(N/64) * ceil(K/4) * 256 bytes.
inline int64_t packed_panels(int64_t n) { return (n + kPanelCols - 1) / kPanelCols; }
inline int64_t packed_groups(int64_t k) { return (k + kGroup - 1) / kGroup; }
inline int64_t packed_bytes(int64_t n, int64_t k) { return packed_panels(n) * packed_groups(k) * kPanelCols * kGroup; }

// Packs the row-major int8 weight w [n, k] (row stride w_rs) and writes its column sums
// col_sums[j] = sum_p W(j, p) (the shifted-activation correction needs them).
void pack_weight(const int8_t* w, int64_t n, int64_t k, int64_t w_rs, int8_t* packed, int32_t* col_sums);
// The inverse: row-major int8 [n, k].
void unpack_weight(const int8_t* packed, int64_t n, int64_t k, int8_t* w);

struct QGemm {
  int64_t m = 0, n = 0, k = 0;
  // A, row-major with row stride a_rs (unit column stride): either fp32 (quantized per row while
  // packing: scale = absmax/127, or the fixed static_scale when > 0) or int8 with a_scales (or,
  // when a_scales is null, scale 1).
  const float* a_f32 = nullptr;
  const int8_t* a_i8 = nullptr;
  int64_t a_rs = 0;
  const float* a_scales = nullptr;  // int8 A: m row scales, or null
  float static_scale = 0.0f;        // fp32 A: > 0 = one fixed scale (static quantization, saturating)
  // W, packed (see above), with its column sums and n column scales (null: 1).
  const int8_t* w_packed = nullptr;
  const int32_t* w_col_sums = nullptr;
  const float* w_scales = nullptr;
  // Output: fp32 through the epilogue, or the raw int32 products (then scales, bias, activation and
  // accumulate are ignored).
  float* c_f32 = nullptr;
  int32_t* c_i32 = nullptr;
  int64_t c_rs = 0;
  const float* bias = nullptr;
  gemm::Activation activation = gemm::Activation::None;
  bool accumulate = false;  // fp32 out: add what C holds before the bias and activation
  float* row_scales_out = nullptr;  // fp32 A: receives the m row scales used (optional)
};

// The fast path: ISA from joule::active_isa() (VNNI needs avx512vnni), threaded on the pool.
// fp32 rows holding NaN or +-Inf get scale NaN: their outputs are NaN (documented, tested).
void qgemm(const QGemm& args);

// The portable scalar reference (single thread) on the unpacked weight w [n, k] (row stride w_rs):
// plain int32 dot products of the (possibly quantized) rows, then the same epilogue arithmetic.
void qgemm_reference(const QGemm& args, const int8_t* w, int64_t w_rs);

// Quantizes one fp32 row symmetrically (scale = absmax/127, [-127, 127]); returns the scale (NaN
// when the row holds a non-finite value; then q is all zero). static_scale > 0 fixes the scale.
float quantize_row_reference(const float* x, int64_t k, float static_scale, int8_t* q);

// Elementwise quantize/dequantize with per-channel parameters: element e belongs to channel
// (e / inner) % channels (channels = 1: per tensor). zero_points may be null (0).
void quantize_affine(const float* x, int64_t count, int64_t channels, int64_t inner, const float* scales,
                     const int32_t* zero_points, int32_t qmin, int32_t qmax, void* q, bool q_unsigned);
void dequantize_affine(const void* q, bool q_unsigned, int64_t count, int64_t channels, int64_t inner,
                       const float* scales, const int32_t* zero_points, float* x);

// Which kernel qgemm would use now: "avx512-vnni", "avx2" or "generic".
const char* qgemm_kernel_name();

}  // namespace joule::quant
