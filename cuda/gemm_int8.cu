// The int8 GEMM on CUDA: C = act(row_scale[i] * col_scale[j] * sum_p A(i, p) W(j, p) + bias[j]), or
// the raw int32 sums (kernels/quant/quant.h, the same QGemm arguments as the CPU path).
//
// Operands. CUDA multiplies signed by signed, so unlike the CPU's VNNI path there is no +128 shift
// of the activations and the column sums are not used. W stays in the packed layout JavaScript
// already owns (QuantizedLinear keeps only the packed bytes; model.to('cuda') moves them): for each
// panel of 64 output channels and each group of 4 k values, 64 words of 4 bytes, word (j, g) =
// W(j, 4g .. 4g+3). That word is exactly one register of an mma.sync B fragment (4 consecutive k
// of one column) and one __dp4a operand, and a 16-group slice of a panel is 4 KiB contiguous, so
// the layout is as good on the GPU as a plain [N, K] matrix and needs no second copy.
// A is first brought to a padded int8 buffer [M, Kp] (Kp = K rounded up to the 64-byte K tile,
// zero beyond K): quantized per row from fp32 by a small kernel (absmax / 127, round half to even,
// saturate to [-127, 127]: quantize_row_reference's arithmetic, so the int32 sums equal the CPU's),
// or copied from a strided int8 A. The padding makes every A load a full, aligned 16-byte vector.
//
// Kernels. The tensor-core kernel: 128 x 128 tile per block of 256 threads (8 warps as 2 x 4, each
// 64 x 32 = 4 x 4 tiles of mma.sync.m16n8k32.s8), K tiles of 64 bytes double-buffered in shared
// memory (the next tile goes global -> registers during the MMAs). The dp4a kernel, for few rows
// (batch-1 inference, where W is read once and the MMA tile would be mostly padding): one thread
// per output column and 4 rows, the W words of consecutive columns adjacent in memory (coalesced).
#include <algorithm>
#include <cfloat>
#include <cstdint>

#include "cuda/backend.h"
#include "cuda/common.h"

namespace joule::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kTileM = 128, kTileN = 128;
constexpr int kTileKBytes = 64;                     // K tile
constexpr int kTileKWords = kTileKBytes / 4;        // 16 groups of 4 k
constexpr int kARowWords = kTileKWords + 4;         // As row: 20 words (conflict-free fragment loads)
constexpr int kBRowWords = kTileN + 8;              // Bs row (one k group): 136 words
constexpr int kPanelWords = quant::kPanelCols;      // words per (panel, group)
constexpr int64_t kGroupM = 8;

struct QParams {
  int64_t m, n, k;
  const int8_t* a;  // padded [m, lda], zero beyond k
  int64_t lda;      // bytes, multiple of 64
  const int32_t* w;  // packed words
  int64_t panels, groups;
  const float* row_scales;  // m, or null (1)
  const float* col_scales;  // n, or null (1)
  const float* bias;
  float* c_f32;
  int32_t* c_i32;
  int64_t c_rs;
  int activation;
  bool accumulate;
};

__device__ __forceinline__ float activate(float v, int activation) {
  if (activation == static_cast<int>(gemm::Activation::Relu)) return v < 0.0f ? 0.0f : v;  // NaN stays NaN
  if (activation == static_cast<int>(gemm::Activation::Gelu)) return v * 0.5f * (1.0f + erff(v * 0.70710678118654752f));
  return v;
}

// The CPU epilogue's arithmetic in its order; __fmul_rn/__fadd_rn keep nvcc from contracting the
// steps into FMAs (which would round differently from the reference).
__device__ __forceinline__ void store_out(const QParams& p, int64_t row, int64_t col, int32_t acc) {
  if (row >= p.m || col >= p.n) return;
  if (p.c_i32 != nullptr) {
    p.c_i32[row * p.c_rs + col] = acc;
    return;
  }
  float v = __fmul_rn(static_cast<float>(acc), p.row_scales != nullptr ? p.row_scales[row] : 1.0f);
  v = __fmul_rn(v, p.col_scales != nullptr ? p.col_scales[col] : 1.0f);
  float* cp = p.c_f32 + row * p.c_rs + col;
  if (p.accumulate) v = __fadd_rn(v, *cp);
  if (p.bias != nullptr) v = __fadd_rn(v, p.bias[col]);
  *cp = activate(v, p.activation);
}

// Word (column j, group g) of the packed weight, 0 outside it.
__device__ __forceinline__ int64_t w_word_index(const QParams& p, int64_t j, int64_t g) {
  return ((j / kPanelWords) * p.groups + g) * kPanelWords + j % kPanelWords;
}

__device__ __forceinline__ void mma_s8(int32_t (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__global__ void __launch_bounds__(kThreads) qgemm_mma_kernel(QParams p) {
  // As[m][k word]: row-major A. Bs[k group][n]: the packed layout's order (a group's words for
  // consecutive columns are adjacent), so both tiles are filled with 16-byte stores.
  __shared__ __align__(16) uint32_t As[2][kTileM * kARowWords];
  __shared__ __align__(16) uint32_t Bs[2][kTileKWords * kBRowWords];
  const int64_t tiles_m = (p.m + kTileM - 1) / kTileM, tiles_n = (p.n + kTileN - 1) / kTileN;
  const int64_t id = blockIdx.x, per_group = kGroupM * tiles_n;
  const int64_t first_m = (id / per_group) * kGroupM;
  const int64_t group_rows = min(tiles_m - first_m, kGroupM);
  const int64_t row0 = (first_m + (id % per_group) % group_rows) * kTileM;
  const int64_t col0 = ((id % per_group) / group_rows) * kTileN;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int warp_m = warp / 4, warp_n = warp % 4;
  const int g = lane / 4, t = lane % 4;

  int32_t acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0;
    }
  }

  // Each thread moves 2 16-byte chunks of A (128 rows x 4 chunks) and 2 of W (2 panels x 16
  // groups x 16 chunks of 4 columns) per K tile.
  int4 ra[2], rb[2];
  auto load = [&](int64_t kt) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int chunk = threadIdx.x + i * kThreads;
      const int r = chunk / 4, c4 = chunk % 4;
      const int64_t gr = row0 + r;
      ra[i] = gr < p.m ? *reinterpret_cast<const int4*>(p.a + gr * p.lda + kt * kTileKBytes + c4 * 16)
                       : make_int4(0, 0, 0, 0);
      const int panel = chunk / 256, within = chunk % 256;
      const int grp = within / 16, col4 = (within % 16) * 4;
      const int64_t gp = col0 / kPanelWords + panel, gg = kt * kTileKWords + grp;
      rb[i] = (gp < p.panels && gg < p.groups)
                  ? *reinterpret_cast<const int4*>(p.w + (gp * p.groups + gg) * kPanelWords + col4)
                  : make_int4(0, 0, 0, 0);
    }
  };
  auto stage = [&](int buf) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int chunk = threadIdx.x + i * kThreads;
      const int r = chunk / 4, c4 = chunk % 4;
      *reinterpret_cast<int4*>(&As[buf][r * kARowWords + c4 * 4]) = ra[i];
      const int panel = chunk / 256, within = chunk % 256;
      const int grp = within / 16, col4 = (within % 16) * 4;
      *reinterpret_cast<int4*>(&Bs[buf][grp * kBRowWords + panel * kPanelWords + col4]) = rb[i];
    }
  };

  const int64_t k_tiles = p.lda / kTileKBytes;  // the padded K: zeros beyond k contribute 0
  if (k_tiles > 0) {
    load(0);
    stage(0);
    __syncthreads();
  }
  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    const int buf = static_cast<int>(kt & 1);
    const bool more = kt + 1 < k_tiles;
    if (more) load(kt + 1);
    const uint32_t* a_tile = &As[buf][(warp_m * 64) * kARowWords];
    const uint32_t* b_tile = &Bs[buf][warp_n * 32];
#pragma unroll
    for (int ks = 0; ks < kTileKWords; ks += 8) {  // MMA k = 32 bytes = 8 words
      // Fragments (PTX ISA, m16n8k32 .s8): A regs (g, k word t), (g + 8, t), (g, t + 4), (g + 8, t + 4);
      // B regs (k word t, n = g), (k word t + 4, n = g); each word holds 4 consecutive k.
      uint32_t af[4][4], bf[4][2];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const uint32_t* at = a_tile + i * 16 * kARowWords;
        af[i][0] = at[g * kARowWords + ks + t];
        af[i][1] = at[(g + 8) * kARowWords + ks + t];
        af[i][2] = at[g * kARowWords + ks + t + 4];
        af[i][3] = at[(g + 8) * kARowWords + ks + t + 4];
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        bf[j][0] = b_tile[(ks + t) * kBRowWords + j * 8 + g];
        bf[j][1] = b_tile[(ks + t + 4) * kBRowWords + j * 8 + g];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) mma_s8(acc[i][j], af[i], bf[j]);
      }
    }
    if (more) stage(buf ^ 1);
    __syncthreads();
  }

  // s32 accumulators: c0, c1 at (g, 2t, 2t + 1), c2, c3 at (g + 8, 2t, 2t + 1).
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t r = row0 + warp_m * 64 + i * 16 + g;
      const int64_t col = col0 + warp_n * 32 + j * 8 + 2 * t;
      store_out(p, r, col, acc[i][j][0]);
      store_out(p, r, col + 1, acc[i][j][1]);
      store_out(p, r + 8, col, acc[i][j][2]);
      store_out(p, r + 8, col + 1, acc[i][j][3]);
    }
  }
}

// dp4a: thread = one column, kDp4aRows rows; blockIdx.y walks row blocks.
constexpr int kDp4aRows = 4;
constexpr int kDp4aThreads = 128;
__global__ void __launch_bounds__(kDp4aThreads) qgemm_dp4a_kernel(QParams p) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(kDp4aThreads) + threadIdx.x;
  for (int64_t i0 = blockIdx.y * static_cast<int64_t>(kDp4aRows); i0 < p.m;
       i0 += static_cast<int64_t>(gridDim.y) * kDp4aRows) {
    if (j >= p.n) continue;  // no barrier in this kernel: idle threads may simply skip
    int32_t acc[kDp4aRows] = {};
    const int32_t* a_rows[kDp4aRows];
#pragma unroll
    for (int r = 0; r < kDp4aRows; ++r) {
      a_rows[r] = reinterpret_cast<const int32_t*>(p.a + min(i0 + r, p.m - 1) * p.lda);
    }
    for (int64_t gw = 0; gw < p.groups; ++gw) {
      const int32_t w = p.w[w_word_index(p, j, gw)];
#pragma unroll
      for (int r = 0; r < kDp4aRows; ++r) acc[r] = __dp4a(a_rows[r][gw], w, acc[r]);
    }
#pragma unroll
    for (int r = 0; r < kDp4aRows; ++r) store_out(p, i0 + r, j, acc[r]);
  }
}

// Per row: the reference's symmetric quantization into the padded buffer, the scale into scales[row].
constexpr int kQuantThreads = 256;
__global__ void __launch_bounds__(kQuantThreads)
    quantize_rows_kernel(const float* x, int64_t x_rs, int64_t k, float static_scale, int8_t* q, int64_t lda,
                         float* scales) {
  __shared__ float block_max[kQuantThreads / 32];
  __shared__ int block_finite[kQuantThreads / 32];
  __shared__ float shared_inv;
  const int64_t row = blockIdx.x;
  const float* xr = x + row * x_rs;
  float absmax = 0.0f;
  int finite = 1;
  for (int64_t p = threadIdx.x; p < k; p += kQuantThreads) {
    const float v = xr[p];
    const float a = fabsf(v);
    if (!(a <= FLT_MAX)) finite = 0;  // NaN or +-Inf
    else absmax = fmaxf(absmax, a);
  }
  for (int off = 16; off > 0; off /= 2) {
    absmax = fmaxf(absmax, __shfl_xor_sync(0xffffffffu, absmax, off));
    finite &= __shfl_xor_sync(0xffffffffu, finite, off);
  }
  if (threadIdx.x % 32 == 0) {
    block_max[threadIdx.x / 32] = absmax;
    block_finite[threadIdx.x / 32] = finite;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float m = 0.0f;
    int f = 1;
    for (int w = 0; w < kQuantThreads / 32; ++w) {
      m = fmaxf(m, block_max[w]);
      f &= block_finite[w];
    }
    float scale = static_scale > 0.0f ? static_scale : __fdiv_rn(m, 127.0f);
    float inv = __fdiv_rn(1.0f, scale);
    if (!f) {
      scale = __int_as_float(0x7fc00000);  // NaN: the row's outputs are NaN, its q all zero
      inv = 0.0f;
    } else if (!(fabsf(inv) <= FLT_MAX)) {
      scale = 0.0f;  // absmax 0 (or a scale too small for a finite reciprocal): everything quantizes to 0
      inv = 0.0f;
    }
    shared_inv = inv;
    scales[row] = scale;
  }
  __syncthreads();
  const float inv = shared_inv;
  int8_t* qr = q + row * lda;
  for (int64_t p = threadIdx.x; p < lda; p += kQuantThreads) {
    int8_t out = 0;
    if (p < k && inv != 0.0f) {
      const float v = fminf(fmaxf(__fmul_rn(xr[p], inv), -127.0f), 127.0f);
      out = static_cast<int8_t>(__float2int_rn(v));  // round half to even
    }
    qr[p] = out;
  }
}

// The strided int8 A into the padded buffer.
__global__ void pad_rows_kernel(const int8_t* a, int64_t a_rs, int64_t m, int64_t k, int8_t* q, int64_t lda) {
  const int64_t total = m * lda;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = e / lda, p = e % lda;
    q[e] = p < k ? a[r * a_rs + p] : int8_t{0};
  }
}

bool aligned(const void* p, uintptr_t bytes) { return (reinterpret_cast<uintptr_t>(p) & (bytes - 1)) == 0; }

}  // namespace

void qgemm(const quant::QGemm& g, int device, Int8Kernel kernel) {
  if (g.m == 0 || g.n == 0) return;
  JOULE_CHECK((g.a_f32 != nullptr) != (g.a_i8 != nullptr), Code::InvalidArgument,
              "CUDA qgemm: exactly one of fp32 or int8 A");
  JOULE_CHECK((g.c_f32 != nullptr) != (g.c_i32 != nullptr), Code::InvalidArgument,
              "CUDA qgemm: exactly one of fp32 or int32 C");
  JOULE_CHECK(g.k <= quant::kMaxK, Code::InvalidArgument, "CUDA qgemm: K = ", g.k, " exceeds ", quant::kMaxK);
  JOULE_CHECK(g.k == 0 || (g.w_packed != nullptr && aligned(g.w_packed, 4)), Code::InvalidArgument,
              "CUDA qgemm: the packed weight must be 4-byte aligned");
  cudaStream_t s = stream(device);
  const int64_t lda = (g.k + kTileKBytes - 1) / kTileKBytes * kTileKBytes;

  // A: the padded int8 buffer, and the row scales (fp32 A) where the caller did not ask for them.
  const bool given_padded = g.a_i8 != nullptr && g.a_rs == lda && aligned(g.a_i8, 16) && g.k == lda;
  Scratch a_buf(device, given_padded ? 0 : static_cast<size_t>(g.m * lda));
  Scratch scale_buf(device, g.a_f32 != nullptr && g.row_scales_out == nullptr ? static_cast<size_t>(g.m) * 4 : 0);
  const int8_t* a_padded = given_padded ? g.a_i8 : a_buf.get<int8_t>();
  const float* row_scales = g.a_scales;
  if (g.a_f32 != nullptr) {
    float* scales = g.row_scales_out != nullptr ? g.row_scales_out : scale_buf.get<float>();
    JOULE_CHECK(g.m <= 0x7fffffff, Code::InvalidArgument, "CUDA qgemm: too many rows");
    quantize_rows_kernel<<<static_cast<unsigned>(g.m), kQuantThreads, 0, s>>>(g.a_f32, g.a_rs, g.k, g.static_scale,
                                                                             a_buf.get<int8_t>(), lda, scales);
    check_cuda(cudaGetLastError(), "CUDA int8 quantize-rows launch");
    row_scales = scales;
  } else if (!given_padded && lda > 0) {
    const int64_t total = g.m * lda;
    const int blocks = static_cast<int>(std::min<int64_t>((total + 255) / 256, 65536));
    pad_rows_kernel<<<blocks, 256, 0, s>>>(g.a_i8, g.a_rs, g.m, g.k, a_buf.get<int8_t>(), lda);
    check_cuda(cudaGetLastError(), "CUDA int8 pad launch");
  }

  QParams p;
  p.m = g.m;
  p.n = g.n;
  p.k = g.k;
  p.a = a_padded;
  p.lda = lda;
  p.w = reinterpret_cast<const int32_t*>(g.w_packed);
  p.panels = quant::packed_panels(g.n);
  p.groups = quant::packed_groups(g.k);
  p.row_scales = row_scales;
  p.col_scales = g.w_scales;
  p.bias = g.bias;
  p.c_f32 = g.c_f32;
  p.c_i32 = g.c_i32;
  p.c_rs = g.c_rs;
  p.activation = static_cast<int>(g.activation);
  p.accumulate = g.accumulate;

  // The MMA kernel's 16-byte W loads need an aligned packed weight (fresh tensors always are).
  const bool mma_ok = g.k == 0 || aligned(g.w_packed, 16);
  bool use_mma = kernel == Int8Kernel::TensorCore || (kernel == Int8Kernel::Auto && g.m > 16 && mma_ok);
  JOULE_CHECK(!use_mma || mma_ok, Code::InvalidArgument, "CUDA qgemm: the tensor-core kernel needs a 16-byte aligned packed weight");
  if (use_mma) {
    const int64_t tiles = ((g.m + kTileM - 1) / kTileM) * ((g.n + kTileN - 1) / kTileN);
    JOULE_CHECK(tiles <= 0x7fffffff, Code::InvalidArgument, "CUDA qgemm: ", g.m, " x ", g.n, " is too large");
    qgemm_mma_kernel<<<static_cast<unsigned>(tiles), kThreads, 0, s>>>(p);
    check_cuda(cudaGetLastError(), "CUDA int8 GEMM (mma) launch");
  } else {
    const int64_t col_blocks = (g.n + kDp4aThreads - 1) / kDp4aThreads;
    const int64_t row_blocks = std::min<int64_t>((g.m + kDp4aRows - 1) / kDp4aRows, 65535);
    JOULE_CHECK(col_blocks <= 0x7fffffff, Code::InvalidArgument, "CUDA qgemm: too many columns");
    const dim3 grid(static_cast<unsigned>(col_blocks), static_cast<unsigned>(row_blocks));
    qgemm_dp4a_kernel<<<grid, kDp4aThreads, 0, s>>>(p);
    check_cuda(cudaGetLastError(), "CUDA int8 GEMM (dp4a) launch");
  }
}

}  // namespace joule::cuda
