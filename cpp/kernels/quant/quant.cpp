// int8 GEMM driver (ISA dispatch, blocking, packing of A with the dynamic per-row quantization
// fused in, threading), weight packing, the scalar references, and the elementwise quantizers.
//
// Structure of one product (per thread, on its own rectangle of C):
//   for ic in M step MC               A block: MC rows quantized + packed once (L2-resident, MC*K bytes)
//     for jp in the rectangle's weight panels (64 columns, prepacked once per model)
//       for ir in MC step MR          the K x 64 weight panel stays in L2/L1 while A panels stream by
//         micro-kernel over all of K: int32 accumulators never leave the registers, then the
//         dequantizing epilogue (row scale x column scale, + bias, activation) writes fp32 C.
// K is not blocked: int32 accumulation is exact, so there is no partial-sum traffic, and at one
// vpdpbusd per cycle the 64-column panel streams from L2 at ~12 B/cycle, well within its bandwidth.
//
// vpdpbusd multiplies unsigned by signed bytes, so A is stored shifted by +128 (q ^ 0x80) and
// 128 * colsum(W) is subtracted in the epilogue; all paths (VNNI, AVX2, generic) share that
// convention, and each equals the reference (plain int8 dot products) exactly.
#include "kernels/quant/quant.h"
#include "kernels/work_split.h"

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/cpu_features.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "kernels/quant/internal.h"

namespace joule::quant {

namespace detail {
namespace {

using kernels::ceil_div;
using kernels::round_up;
using kernels::split_range;
using kernels::WorkSplit;

// Below this many multiply-adds one thread does the product (int8 runs ~4x the fp32 rate).
constexpr int64_t kMinParallelWork = int64_t{1} << 19;
// The A block (MC x K bytes) is sized to stay in L2 beside one weight panel (K x 64 bytes).
constexpr int64_t kABlockBytes = 320 * 1024;

class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer() { std::free(data_); }
  void* get(int64_t bytes) {
    if (bytes > capacity_) {
      std::free(data_);
      data_ = nullptr;
      capacity_ = 0;
      const size_t size = static_cast<size_t>(round_up(std::max<int64_t>(bytes, 64), 64));
      data_ = std::aligned_alloc(64, size);
      check(data_ != nullptr, Code::OutOfMemory, "qgemm: cannot allocate a packing buffer of ", size, " bytes");
      capacity_ = static_cast<int64_t>(size);
    }
    return data_;
  }

 private:
  void* data_ = nullptr;
  int64_t capacity_ = 0;
};

struct Workspace {
  ScratchBuffer a_panels, row, scales;
  ScratchBuffer pad_scales, pad_sums, pad_bias;  // qgemm's padded column data (calling thread only)
};
Workspace& thread_workspace() {
  thread_local Workspace ws;
  return ws;
}

inline float activate(float v, gemm::Activation a) {
  switch (a) {
    case gemm::Activation::Relu:
      return v < 0.0f ? 0.0f : v;  // NaN stays NaN
    case gemm::Activation::Gelu:
      return gemm::gelu(v);
    case gemm::Activation::None:
      break;
  }
  return v;
}

// 1 / scale, with scales too small for a finite reciprocal (and 0) quantizing everything to 0.
inline float safe_inverse(float* scale) {
  const float inv = 1.0f / *scale;
  if (!(inv <= FLT_MAX)) {
    *scale = 0.0f;
    return 0.0f;
  }
  return inv;
}

// Round half to even for |v| <= 2^22 without a libm call (vectorizes): adding 1.5 * 2^23 moves
// v to where the spacing of floats is 1, and the default rounding mode rounds to nearest even.
inline float rne_small(float v) { return (v + 12582912.0f) - 12582912.0f; }

// ---- the generic micro-kernel: plain C++ on the packed layouts ----

template <int MR>
void generic_micro_kernel(int64_t groups, const void* a_panel, const int8_t* w, int rows, int cols, const TileOut& out) {
  const uint8_t* a = static_cast<const uint8_t*>(a_panel);
  int32_t acc[MR][kPanelCols] = {};
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* ag = a + g * MR * kGroup;
    const int8_t* wg = w + g * kPanelCols * kGroup;
    for (int r = 0; r < rows; ++r) {
      const int32_t a0 = ag[r * 4], a1 = ag[r * 4 + 1], a2 = ag[r * 4 + 2], a3 = ag[r * 4 + 3];
      for (int c = 0; c < cols; ++c) {
        const int8_t* wc = wg + c * kGroup;
        acc[r][c] += a0 * wc[0] + a1 * wc[1] + a2 * wc[2] + a3 * wc[3];
      }
    }
  }
  epilogue_scalar(&acc[0][0], kPanelCols, rows, cols, out);
}

constexpr int kGenericMr = 4;

const IsaKernels kGeneric = {"generic", kGenericMr, AFormat::U8, generic_micro_kernel<kGenericMr>, quantize_row_scalar};

const IsaKernels& select_kernels() {
  const Isa isa = active_isa();
  if (isa == Isa::Avx512 && cpu_features().avx512vnni) {
    if (const IsaKernels* k = avx512_vnni_kernels()) return *k;
  }
  if (isa == Isa::Avx512 || isa == Isa::Avx2) {
    if (const IsaKernels* k = avx2_kernels()) return *k;
  }
  return kGeneric;
}

// Packs `rows` rows of A (from row i0) into one panel of ks.mr rows; writes their scales.
void pack_a_panel(const QGemm& g, const IsaKernels& ks, int64_t i0, int rows, int64_t groups, void* dst,
                  float* scales) {
  Workspace& ws = thread_workspace();
  const int64_t kp = groups * kGroup;
  uint8_t* row = static_cast<uint8_t*>(ws.row.get(kp));
  const int mr = ks.mr;
  for (int r = 0; r < mr; ++r) {
    if (r < rows) {
      const int64_t i = i0 + r;
      if (g.a_f32 != nullptr) {
        scales[r] = ks.quantize_row(g.a_f32 + i * g.a_rs, g.k, g.static_scale, row);
      } else {
        const int8_t* src = g.a_i8 + i * g.a_rs;
        for (int64_t p = 0; p < g.k; ++p) row[p] = static_cast<uint8_t>(src[p]) ^ 0x80u;
        scales[r] = g.a_scales != nullptr ? g.a_scales[i] : 1.0f;
      }
      for (int64_t p = g.k; p < kp; ++p) row[p] = 0x80u;  // shifted zero
    } else {
      std::memset(row, 0x80, static_cast<size_t>(kp));
    }
    if (ks.a_format == AFormat::U8) {
      uint8_t* d = static_cast<uint8_t*>(dst) + r * kGroup;
      for (int64_t q = 0; q < groups; ++q) std::memcpy(d + q * mr * kGroup, row + q * kGroup, kGroup);
    } else {
      int16_t* d = static_cast<int16_t*>(dst) + r * kGroup;
      for (int64_t q = 0; q < groups; ++q) {
        int16_t* e = d + q * mr * kGroup;
        const uint8_t* s = row + q * kGroup;
        e[0] = s[0];
        e[1] = s[1];
        e[2] = s[2];
        e[3] = s[3];
      }
    }
  }
}

// Column data padded to whole panels, in the calling thread's workspace (no allocation per call:
// a decode step makes several small products per token).
struct Padded {
  const float* col_scales = nullptr;
  const float* bias = nullptr;
  const int32_t* col_sums = nullptr;
};

// C(m0:m1, n0:n1) on the calling thread; n0 is a multiple of 64.
void qgemm_rectangle(const QGemm& g, const IsaKernels& ks, const Padded& pad, int64_t m0, int64_t m1, int64_t n0,
                     int64_t n1) {
  const int mr = ks.mr;
  const int64_t groups = packed_groups(g.k);
  const int64_t a_elem = ks.a_format == AFormat::U8 ? 1 : 2;
  const int64_t panel_bytes = groups * kGroup * mr * a_elem;
  const int64_t mc_step = std::max<int64_t>(mr, kABlockBytes / (groups * kGroup * mr) * mr);
  Workspace& ws = thread_workspace();
  const int64_t mc_max = std::min(mc_step, round_up(m1 - m0, mr));
  char* a_panels = static_cast<char*>(ws.a_panels.get(mc_max / mr * panel_bytes));
  float* scales = static_cast<float*>(ws.scales.get(mc_max * static_cast<int64_t>(sizeof(float))));
  const int64_t w_panel_bytes = groups * kPanelCols * kGroup;

  for (int64_t ic = m0; ic < m1; ic += mc_step) {
    const int64_t mc = std::min(mc_step, m1 - ic);
    for (int64_t ir = 0; ir < mc; ir += mr) {
      const int rows = static_cast<int>(std::min<int64_t>(mr, mc - ir));
      pack_a_panel(g, ks, ic + ir, rows, groups, a_panels + ir / mr * panel_bytes, scales + ir);
    }
    if (g.row_scales_out != nullptr && n0 == 0) std::memcpy(g.row_scales_out + ic, scales, sizeof(float) * mc);
    for (int64_t jc = n0; jc < n1; jc += kPanelCols) {
      const int cols = static_cast<int>(std::min<int64_t>(kPanelCols, n1 - jc));
      const int8_t* w_panel = g.w_packed + jc / kPanelCols * w_panel_bytes;
      for (int64_t ir = 0; ir < mc; ir += mr) {
        const int rows = static_cast<int>(std::min<int64_t>(mr, mc - ir));
        TileOut out;
        out.c_rs = g.c_rs;
        if (g.c_i32 != nullptr) {
          out.c_i32 = g.c_i32 + (ic + ir) * g.c_rs + jc;
        } else {
          out.c_f32 = g.c_f32 + (ic + ir) * g.c_rs + jc;
        }
        out.row_scales = scales + ir;
        out.col_scales = pad.col_scales + jc;
        out.col_sums = pad.col_sums + jc;
        out.bias = pad.bias != nullptr ? pad.bias + jc : nullptr;
        out.activation = g.activation;
        out.accumulate = g.accumulate;
        ks.micro_kernel(groups, a_panels + ir / mr * panel_bytes, w_panel, rows, cols, out);
      }
    }
  }
}

// Splitting N repeats A's quantization per band; splitting M shares the packed weights.
WorkSplit plan_split(int64_t m, int64_t n, int64_t k, int mr, int threads) {
  return kernels::plan_split(m, n, mr, kPanelCols, threads,
                             [k](int64_t rows, int64_t cols) { return rows * cols * k / 4 + 16 * k * rows; });
}


void validate(const QGemm& g, const char* who) {
  check(g.m >= 0 && g.n >= 0 && g.k >= 0, Code::InvalidArgument, who, ": negative dimension (m=", g.m, ", n=", g.n,
        ", k=", g.k, ")");
  check(g.k <= kMaxK, Code::InvalidArgument, who, ": K = ", g.k, " exceeds ", kMaxK,
        " (int32 accumulation could overflow)");
  if (g.m == 0 || g.n == 0) return;
  check((g.a_f32 != nullptr) != (g.a_i8 != nullptr), Code::InvalidArgument, who, ": exactly one of fp32 or int8 A");
  check((g.c_f32 != nullptr) != (g.c_i32 != nullptr), Code::InvalidArgument, who, ": exactly one of fp32 or int32 C");
}

}  // namespace

float quantize_row_scalar(const float* x, int64_t k, float static_scale, uint8_t* q) {
  float scale = static_scale;
  bool finite = true;
  if (static_scale > 0.0f) {
    for (int64_t p = 0; p < k; ++p) finite &= std::fabs(x[p]) <= FLT_MAX;
  } else {
    float absmax = 0.0f;
    for (int64_t p = 0; p < k; ++p) {
      const float a = std::fabs(x[p]);
      finite &= a <= FLT_MAX;
      absmax = a > absmax ? a : absmax;
    }
    scale = absmax / 127.0f;
  }
  if (!finite) {
    std::memset(q, 0x80, static_cast<size_t>(k));
    return NAN;
  }
  const float inv = safe_inverse(&scale);
  for (int64_t p = 0; p < k; ++p) {
    const float v = std::min(std::max(x[p] * inv, -127.0f), 127.0f);
    q[p] = static_cast<uint8_t>(static_cast<int32_t>(rne_small(v)) + 128);
  }
  return scale;
}

void epilogue_scalar(const int32_t* acc, int64_t acc_rs, int rows, int cols, const TileOut& out) {
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const int32_t a = acc[r * acc_rs + c] - 128 * out.col_sums[c];
      if (out.c_i32 != nullptr) {
        out.c_i32[r * out.c_rs + c] = a;
        continue;
      }
      float v = static_cast<float>(a) * out.row_scales[r];
      v = v * out.col_scales[c];
      float* cp = out.c_f32 + r * out.c_rs + c;
      if (out.accumulate) v = v + *cp;
      if (out.bias != nullptr) v = v + out.bias[c];
      *cp = activate(v, out.activation);
    }
  }
}

const IsaKernels* generic_kernels() { return &kGeneric; }

}  // namespace detail

using namespace detail;

void pack_weight(const int8_t* w, int64_t n, int64_t k, int64_t w_rs, int8_t* packed, int32_t* col_sums) {
  const int64_t groups = packed_groups(k), panels = packed_panels(n);
  std::memset(packed, 0, static_cast<size_t>(packed_bytes(n, k)));
  parallel_for(panels, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t panel = p0; panel < p1; ++panel) {
      int8_t* dst = packed + panel * groups * kPanelCols * kGroup;
      for (int c = 0; c < kPanelCols; ++c) {
        const int64_t j = panel * kPanelCols + c;
        if (j >= n) break;
        const int8_t* row = w + j * w_rs;
        int32_t sum = 0;
        for (int64_t p = 0; p < k; ++p) {
          dst[(p / kGroup) * kPanelCols * kGroup + c * kGroup + p % kGroup] = row[p];
          sum += row[p];
        }
        col_sums[j] = sum;
      }
    }
  });
}

void unpack_weight(const int8_t* packed, int64_t n, int64_t k, int8_t* w) {
  const int64_t groups = packed_groups(k);
  for (int64_t j = 0; j < n; ++j) {
    const int8_t* src = packed + (j / kPanelCols) * groups * kPanelCols * kGroup + (j % kPanelCols) * kGroup;
    for (int64_t p = 0; p < k; ++p) w[j * k + p] = src[(p / kGroup) * kPanelCols * kGroup + p % kGroup];
  }
}

const char* qgemm_kernel_name() { return select_kernels().name; }

void qgemm(const QGemm& g) {
  validate(g, "qgemm");
  if (g.m == 0 || g.n == 0) return;
  check(g.w_packed != nullptr && g.w_col_sums != nullptr, Code::InvalidArgument, "qgemm: no packed weight");
  const IsaKernels& ks = select_kernels();
  // Column data padded to whole panels so the kernels can load full vectors.
  const int64_t np = packed_panels(g.n) * kPanelCols;
  Workspace& ws = thread_workspace();
  float* col_scales = static_cast<float*>(ws.pad_scales.get(np * static_cast<int64_t>(sizeof(float))));
  int32_t* col_sums = static_cast<int32_t*>(ws.pad_sums.get(np * static_cast<int64_t>(sizeof(int32_t))));
  for (int64_t j = 0; j < g.n; ++j) col_scales[j] = g.w_scales != nullptr ? g.w_scales[j] : 1.0f;
  std::fill(col_scales + g.n, col_scales + np, 0.0f);
  std::memcpy(col_sums, g.w_col_sums, sizeof(int32_t) * g.n);
  std::fill(col_sums + g.n, col_sums + np, 0);
  Padded pad;
  pad.col_scales = col_scales;
  pad.col_sums = col_sums;
  if (g.bias != nullptr) {
    float* bias = static_cast<float*>(ws.pad_bias.get(np * static_cast<int64_t>(sizeof(float))));
    std::memcpy(bias, g.bias, sizeof(float) * g.n);
    std::fill(bias + g.n, bias + np, 0.0f);
    pad.bias = bias;
  }
  const int64_t work = g.m * g.n * std::max<int64_t>(g.k, 1);
  int threads = 1;
  if (num_threads() > 1 && work >= kMinParallelWork) {
    threads = static_cast<int>(std::min<int64_t>(num_threads(), std::max<int64_t>(1, work / kMinParallelWork)));
  }
  if (threads <= 1) {
    qgemm_rectangle(g, ks, pad, 0, g.m, 0, g.n);
    return;
  }
  std::atomic<int> next_item{0};
  run_parallel(threads, [&](int, int workers) {
    const WorkSplit split = plan_split(g.m, g.n, g.k, ks.mr, workers);
    for (;;) {
      const int item = next_item.fetch_add(1, std::memory_order_relaxed);
      if (item >= split.parts_m * split.parts_n) break;
      int64_t m0, m1, n0, n1;
      split_range(g.m, ks.mr, item / split.parts_n, split.parts_m, &m0, &m1);
      split_range(g.n, kPanelCols, item % split.parts_n, split.parts_n, &n0, &n1);
      if (m0 < m1 && n0 < n1) qgemm_rectangle(g, ks, pad, m0, m1, n0, n1);
    }
  });
}

float quantize_row_reference(const float* x, int64_t k, float static_scale, int8_t* q) {
  float scale = static_scale;
  bool finite = true;
  float absmax = 0.0f;
  for (int64_t p = 0; p < k; ++p) {
    if (!std::isfinite(x[p])) finite = false;
    absmax = std::max(absmax, std::fabs(x[p]));
  }
  if (!finite) {
    std::fill(q, q + k, int8_t{0});
    return NAN;
  }
  if (!(static_scale > 0.0f)) scale = absmax / 127.0f;
  float inv = 1.0f / scale;
  if (!std::isfinite(inv)) {
    scale = 0.0f;
    inv = 0.0f;
  }
  for (int64_t p = 0; p < k; ++p) {
    const float v = std::nearbyint(std::clamp(x[p] * inv, -127.0f, 127.0f));
    q[p] = static_cast<int8_t>(v);
  }
  return scale;
}

void qgemm_reference(const QGemm& g, const int8_t* w, int64_t w_rs) {
  validate(g, "qgemm_reference");
  std::vector<int8_t> q(static_cast<size_t>(g.k));
  for (int64_t i = 0; i < g.m; ++i) {
    float row_scale;
    if (g.a_f32 != nullptr) {
      row_scale = quantize_row_reference(g.a_f32 + i * g.a_rs, g.k, g.static_scale, q.data());
    } else {
      std::copy(g.a_i8 + i * g.a_rs, g.a_i8 + i * g.a_rs + g.k, q.begin());
      row_scale = g.a_scales != nullptr ? g.a_scales[i] : 1.0f;
    }
    if (g.row_scales_out != nullptr) g.row_scales_out[i] = row_scale;
    for (int64_t j = 0; j < g.n; ++j) {
      int32_t acc = 0;
      for (int64_t p = 0; p < g.k; ++p) acc += static_cast<int32_t>(q[p]) * w[j * w_rs + p];
      if (g.c_i32 != nullptr) {
        g.c_i32[i * g.c_rs + j] = acc;
        continue;
      }
      float v = static_cast<float>(acc) * row_scale;
      v = v * (g.w_scales != nullptr ? g.w_scales[j] : 1.0f);
      float* cp = g.c_f32 + i * g.c_rs + j;
      if (g.accumulate) v = v + *cp;
      if (g.bias != nullptr) v = v + g.bias[j];
      *cp = activate(v, g.activation);
    }
  }
}

void quantize_affine(const float* x, int64_t count, int64_t channels, int64_t inner, const float* scales,
                     const int32_t* zero_points, int32_t qmin, int32_t qmax, void* q, bool q_unsigned) {
  parallel_for(count, 1 << 16, [&](int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; ++e) {
      const int64_t c = channels == 1 ? 0 : (e / inner) % channels;
      float scale = scales[c];
      const float inv = safe_inverse(&scale);
      const int32_t zp = zero_points != nullptr ? zero_points[c] : 0;
      // Clamp in float first (the product may exceed int32), then round, shift and saturate.
      const float v = std::clamp(x[e] * inv, -1.0e9f, 1.0e9f);
      const int32_t r = std::clamp(static_cast<int32_t>(std::nearbyint(v)) + zp, qmin, qmax);
      if (q_unsigned) {
        static_cast<uint8_t*>(q)[e] = static_cast<uint8_t>(r);
      } else {
        static_cast<int8_t*>(q)[e] = static_cast<int8_t>(r);
      }
    }
  });
}

void dequantize_affine(const void* q, bool q_unsigned, int64_t count, int64_t channels, int64_t inner,
                       const float* scales, const int32_t* zero_points, float* x) {
  parallel_for(count, 1 << 16, [&](int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; ++e) {
      const int64_t c = channels == 1 ? 0 : (e / inner) % channels;
      const int32_t v = q_unsigned ? static_cast<const uint8_t*>(q)[e] : static_cast<const int8_t*>(q)[e];
      const int32_t zp = zero_points != nullptr ? zero_points[c] : 0;
      x[e] = static_cast<float>(v - zp) * scales[c];
    }
  });
}

}  // namespace joule::quant
