// The fp32 GEMM family on CUDA: C = act(alpha * op(A) op(B) + beta * C + bias), with every operand
// addressed through a row and a column stride (kernels/gemm/gemm.h), so transposes, broadcast and
// strided views need no copy. Three precisions (ops::MatmulPrecision, like PyTorch's
// set_float32_matmul_precision), all accumulating in fp32:
//   Highest: exact fp32 on the CUDA cores (a SIMT kernel, 8x8 outputs per thread);
//   High:    TF32 tensor cores, mma.sync m16n8k8 (operands rounded with cvt.rna.tf32.f32);
//   Medium:  BF16 tensor cores, mma.sync m16n8k16 (operands rounded to bf16, nearest even, while
//            they are staged to shared memory; Joule has no bf16 dtype, so the fp32 tensors are
//            converted tile by tile and nothing bf16 is ever stored in global memory).
// Every kernel computes a 128 x 128 tile of C per block of 256 threads and walks K in tiles held
// twice in shared memory: while the tensor/CUDA cores work on one buffer, the next tile is loaded
// from global memory into registers and then stored (converted) into the other buffer, so one
// __syncthreads per K tile suffices. The loads are bounds-checked element by element (rows past M
// or N and k past K read 0, which contributes 0 to every sum), and 4-wide vector loads are used
// only where the operand is contiguous along the loaded axis and the whole chunk is in range.
// ldmatrix and cp.async are not used: the conversion has to pass through registers anyway, and
// plain 32-bit shared-memory loads of the fragments keep the layout obviously right.
//
// A Hopper wgmma/TMA path is not here: it needs sm_90a (arch-specific features), which is not in
// Joule's architecture list ("80-real;86-real;89-real;90"); compiling it would mean adding 90a.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cuda/backend.h"
#include "cuda/common.h"

namespace joule::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kTileM = 128;
constexpr int kTileN = 128;
// Blocks of this many M tiles are walked N-tile-major, so that concurrently running blocks share
// A rows and B columns in L2 (a grouped launch order).
constexpr int64_t kGroupM = 8;

struct GemmParams {
  int64_t m, n, k;
  const float* a;
  int64_t a_rs, a_cs, a_bs;  // a_bs: elements between consecutive batch items
  const float* b;
  int64_t b_rs, b_cs, b_bs;
  float* c;
  int64_t c_rs, c_cs, c_bs;
  float alpha, beta;
  const float* bias;
  int activation;  // gemm::Activation
  bool a_vec, b_vec;  // 4-wide loads along the operand's contiguous axis are safe (alignment)
};

// One operand tile as the loader sees it: `rows` rows (M for A, N for B) by k columns, element
// (r, p) at base[r * row_stride + p * k_stride]. k_fast says which axis consecutive threads walk
// (the contiguous one, for coalescing).
struct OperandView {
  const float* base;
  int64_t row_stride, k_stride;
  int64_t rows, k;  // bounds
  bool k_fast, vec;
};

__device__ __forceinline__ OperandView view_a(const GemmParams& p, int64_t batch) {
  OperandView v;
  v.base = p.a + batch * p.a_bs;
  v.row_stride = p.a_rs;
  v.k_stride = p.a_cs;
  v.rows = p.m;
  v.k = p.k;
  v.k_fast = p.a_cs == 1 || p.a_rs != 1;
  v.vec = p.a_vec;
  return v;
}

__device__ __forceinline__ OperandView view_b(const GemmParams& p, int64_t batch) {
  OperandView v;
  v.base = p.b + batch * p.b_bs;
  v.row_stride = p.b_cs;  // the tile's rows are B's columns
  v.k_stride = p.b_rs;
  v.rows = p.n;
  v.k = p.k;
  v.k_fast = p.b_rs == 1 || p.b_cs != 1;
  v.vec = p.b_vec;
  return v;
}

// Loads a kRows x kK tile starting at (row0, k0) into `regs`: each thread loads kChunks chunks of 4
// consecutive elements along the fast axis. The same (thread, chunk) -> (row, k) mapping is used by
// for_each_loaded to store them, so the two stay in step.
template <int kRows, int kK>
struct TileLoader {
  static constexpr int kElems = kRows * kK / kThreads;
  static constexpr int kChunks = kElems / 4;
  static_assert(kElems % 4 == 0, "tile must split into 4-element chunks");

  // (row, k) of element e (0..3) of chunk i of this thread.
  __device__ __forceinline__ static void coords(bool k_fast, int i, int e, int* row, int* kk) {
    const int chunk = threadIdx.x + i * kThreads;
    if (k_fast) {
      *row = chunk / (kK / 4);
      *kk = (chunk % (kK / 4)) * 4 + e;
    } else {
      *kk = chunk / (kRows / 4);
      *row = (chunk % (kRows / 4)) * 4 + e;
    }
  }

  __device__ __forceinline__ static void load(const OperandView& v, int64_t row0, int64_t k0, float (&regs)[kElems]) {
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      int r, kk;
      coords(v.k_fast, i, 0, &r, &kk);
      const int64_t gr = row0 + r, gk = k0 + kk;
      // The chunk's 4 elements run along the fast axis; a vector load needs all of them in range.
      const bool full = v.k_fast ? (gr < v.rows && gk + 3 < v.k) : (gk < v.k && gr + 3 < v.rows);
      if (v.vec && full) {
        const float4 q = *reinterpret_cast<const float4*>(v.base + gr * v.row_stride + gk * v.k_stride);
        regs[i * 4 + 0] = q.x;
        regs[i * 4 + 1] = q.y;
        regs[i * 4 + 2] = q.z;
        regs[i * 4 + 3] = q.w;
      } else {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int64_t er = v.k_fast ? gr : gr + e;
          const int64_t ek = v.k_fast ? gk + e : gk;
          regs[i * 4 + e] = (er < v.rows && ek < v.k) ? v.base[er * v.row_stride + ek * v.k_stride] : 0.0f;
        }
      }
    }
  }
};

__device__ __forceinline__ float activate(float v, int activation) {
  if (activation == static_cast<int>(gemm::Activation::Relu)) return v < 0.0f ? 0.0f : v;  // NaN stays NaN
  if (activation == static_cast<int>(gemm::Activation::Gelu)) return v * 0.5f * (1.0f + erff(v * 0.70710678118654752f));
  return v;
}

// The epilogue of one element, in the CPU GEMM's order: alpha * acc + beta * C + bias, then the
// activation. C is read only when beta != 0 (BLAS semantics: NaN in an unread C does not leak).
__device__ __forceinline__ void store_c(const GemmParams& p, float* c, int64_t row, int64_t col, float acc) {
  if (row >= p.m || col >= p.n) return;
  float* cp = c + row * p.c_rs + col * p.c_cs;
  float v = p.alpha * acc;
  if (p.beta != 0.0f) v = v + p.beta * *cp;
  if (p.bias != nullptr) v = v + p.bias[col];
  *cp = activate(v, p.activation);
}

// Block -> (tile_m, tile_n) in the grouped order, and the batch item from blockIdx.y/z.
__device__ __forceinline__ void block_tile(const GemmParams& p, int64_t* tile_m, int64_t* tile_n) {
  const int64_t tiles_m = (p.m + kTileM - 1) / kTileM, tiles_n = (p.n + kTileN - 1) / kTileN;
  const int64_t id = blockIdx.x;
  const int64_t per_group = kGroupM * tiles_n;
  const int64_t first_m = (id / per_group) * kGroupM;
  const int64_t group_rows = min(tiles_m - first_m, kGroupM);
  *tile_m = first_m + (id % per_group) % group_rows;
  *tile_n = (id % per_group) / group_rows;
}

// ---------------------------------------------------------------------------------------------
// Highest: exact fp32. Shared tiles are stored k-major (As[k][m], Bs[k][n]) so each thread reads
// its 8 A values and 8 B values per k as broadcasts / consecutive words (conflict-free), and
// computes rows ty + 16 i, columns tx + 16 j (i, j < 8): consecutive threads write consecutive
// columns of C.
constexpr int kSimtK = 16;
constexpr int kSimtPad = 4;

__global__ void __launch_bounds__(kThreads) sgemm_simt_kernel(GemmParams p, int64_t batch0) {
  __shared__ float As[2][kSimtK][kTileM + kSimtPad];
  __shared__ float Bs[2][kSimtK][kTileN + kSimtPad];
  using Loader = TileLoader<kTileM, kSimtK>;
  const int64_t batch = batch0 + blockIdx.z;
  int64_t tile_m, tile_n;
  block_tile(p, &tile_m, &tile_n);
  const int64_t row0 = tile_m * kTileM, col0 = tile_n * kTileN;
  const OperandView va = view_a(p, batch), vb = view_b(p, batch);
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;

  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;
  }
  float ra[Loader::kElems], rb[Loader::kElems];
  auto stage = [&](int buf) {
#pragma unroll
    for (int i = 0; i < Loader::kChunks; ++i) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        int r, kk;
        Loader::coords(va.k_fast, i, e, &r, &kk);
        As[buf][kk][r] = ra[i * 4 + e];
        Loader::coords(vb.k_fast, i, e, &r, &kk);
        Bs[buf][kk][r] = rb[i * 4 + e];
      }
    }
  };

  const int64_t k_tiles = (p.k + kSimtK - 1) / kSimtK;
  if (k_tiles > 0) {
    Loader::load(va, row0, 0, ra);
    Loader::load(vb, col0, 0, rb);
    stage(0);
    __syncthreads();
  }
  for (int64_t t = 0; t < k_tiles; ++t) {
    const int buf = static_cast<int>(t & 1);
    const bool more = t + 1 < k_tiles;
    if (more) {
      Loader::load(va, row0, (t + 1) * kSimtK, ra);
      Loader::load(vb, col0, (t + 1) * kSimtK, rb);
    }
#pragma unroll
    for (int kk = 0; kk < kSimtK; ++kk) {
      float av[8], bv[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) av[i] = As[buf][kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 8; ++j) bv[j] = Bs[buf][kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 8; ++i) {
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
      }
    }
    if (more) stage(buf ^ 1);
    __syncthreads();
  }

  float* c = p.c + batch * p.c_bs;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
#pragma unroll
    for (int j = 0; j < 8; ++j) store_c(p, c, row0 + ty + 16 * i, col0 + tx + 16 * j, acc[i][j]);
  }
}

// ---------------------------------------------------------------------------------------------
// Tensor cores. 8 warps as 2 (M) x 4 (N), each warp owning a 64 x 32 piece of the tile: 4 x 4
// MMA tiles of 16 x 8. Shared tiles are stored row-major with k contiguous (As[m][k], Bs[n][k]),
// padded so that the 32 lanes' fragment loads (row = lane / 4, k word = lane % 4) hit 32 distinct
// banks: the padded row stride is 20 words, and 20 * g + t (g < 8, t < 4) covers 0..31 mod 32.

__device__ __forceinline__ uint32_t to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
}

__device__ __forceinline__ uint16_t to_bf16(float x) { return __bfloat16_as_ushort(__float2bfloat16_rn(x)); }

__device__ __forceinline__ void mma_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Per precision: the shared element type, the K tile, and the fragment loads of one MMA k step.
struct Tf32Traits {
  using Elem = uint32_t;
  static constexpr int kK = 16;      // K tile (2 MMA steps of 8)
  static constexpr int kStep = 8;    // MMA k
  static constexpr int kRow = kK + 4;  // padded row: 20 words
  __device__ __forceinline__ static Elem convert(float x) { return to_tf32(x); }
  // A fragment (PTX ISA, m16n8k8 .tf32): a0 (g, t), a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4).
  __device__ __forceinline__ static void load_a(const Elem* tile, int ks, int g, int t, uint32_t (&a)[4]) {
    a[0] = tile[g * kRow + ks + t];
    a[1] = tile[(g + 8) * kRow + ks + t];
    a[2] = tile[g * kRow + ks + t + 4];
    a[3] = tile[(g + 8) * kRow + ks + t + 4];
  }
  // B fragment: b0 (k = t, n = g), b1 (k = t + 4, n = g); tile is Bs[n][k].
  __device__ __forceinline__ static void load_b(const Elem* tile, int ks, int g, int t, uint32_t (&b)[2]) {
    b[0] = tile[g * kRow + ks + t];
    b[1] = tile[g * kRow + ks + t + 4];
  }
  __device__ __forceinline__ static void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    mma_tf32(d, a, b);
  }
};

struct Bf16Traits {
  using Elem = uint16_t;
  static constexpr int kK = 32;      // K tile (2 MMA steps of 16)
  static constexpr int kStep = 16;
  static constexpr int kRow = kK + 8;  // padded row: 40 bf16 = 20 words
  __device__ __forceinline__ static Elem convert(float x) { return to_bf16(x); }
  __device__ __forceinline__ static uint32_t pair(const Elem* tile, int row, int k) {
    return *reinterpret_cast<const uint32_t*>(tile + row * kRow + k);  // k even: 4-byte aligned
  }
  // A fragment (m16n8k16 .bf16): reg0 (g, 2t..2t+1), reg1 (g + 8, 2t..), reg2 (g, 2t + 8..),
  // reg3 (g + 8, 2t + 8..); the lower k in the lower half of each register.
  __device__ __forceinline__ static void load_a(const Elem* tile, int ks, int g, int t, uint32_t (&a)[4]) {
    a[0] = pair(tile, g, ks + 2 * t);
    a[1] = pair(tile, g + 8, ks + 2 * t);
    a[2] = pair(tile, g, ks + 2 * t + 8);
    a[3] = pair(tile, g + 8, ks + 2 * t + 8);
  }
  // B fragment: reg0 (k = 2t..2t+1, n = g), reg1 (k = 2t + 8.., n = g).
  __device__ __forceinline__ static void load_b(const Elem* tile, int ks, int g, int t, uint32_t (&b)[2]) {
    b[0] = pair(tile, g, ks + 2 * t);
    b[1] = pair(tile, g, ks + 2 * t + 8);
  }
  __device__ __forceinline__ static void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    mma_bf16(d, a, b);
  }
};

template <class Traits>
__global__ void __launch_bounds__(kThreads) sgemm_mma_kernel(GemmParams p, int64_t batch0) {
  using Elem = typename Traits::Elem;
  constexpr int kK = Traits::kK, kRow = Traits::kRow;
  __shared__ __align__(16) Elem As[2][kTileM * kRow];
  __shared__ __align__(16) Elem Bs[2][kTileN * kRow];
  using Loader = TileLoader<kTileM, kK>;
  const int64_t batch = batch0 + blockIdx.z;
  int64_t tile_m, tile_n;
  block_tile(p, &tile_m, &tile_n);
  const int64_t row0 = tile_m * kTileM, col0 = tile_n * kTileN;
  const OperandView va = view_a(p, batch), vb = view_b(p, batch);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int warp_m = warp / 4, warp_n = warp % 4;  // 2 x 4 warps
  const int g = lane / 4, t = lane % 4;

  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
    }
  }
  float ra[Loader::kElems], rb[Loader::kElems];
  auto stage = [&](int buf) {
#pragma unroll
    for (int i = 0; i < Loader::kChunks; ++i) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        int r, kk;
        Loader::coords(va.k_fast, i, e, &r, &kk);
        As[buf][r * kRow + kk] = Traits::convert(ra[i * 4 + e]);
        Loader::coords(vb.k_fast, i, e, &r, &kk);
        Bs[buf][r * kRow + kk] = Traits::convert(rb[i * 4 + e]);
      }
    }
  };

  const int64_t k_tiles = (p.k + kK - 1) / kK;
  if (k_tiles > 0) {
    Loader::load(va, row0, 0, ra);
    Loader::load(vb, col0, 0, rb);
    stage(0);
    __syncthreads();
  }
  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    const int buf = static_cast<int>(kt & 1);
    const bool more = kt + 1 < k_tiles;
    if (more) {
      Loader::load(va, row0, (kt + 1) * kK, ra);
      Loader::load(vb, col0, (kt + 1) * kK, rb);
    }
    const Elem* a_tile = &As[buf][(warp_m * 64) * kRow];
    const Elem* b_tile = &Bs[buf][(warp_n * 32) * kRow];
#pragma unroll
    for (int ks = 0; ks < kK; ks += Traits::kStep) {
      uint32_t af[4][4], bf[4][2];
#pragma unroll
      for (int i = 0; i < 4; ++i) Traits::load_a(a_tile + i * 16 * kRow, ks, g, t, af[i]);
#pragma unroll
      for (int j = 0; j < 4; ++j) Traits::load_b(b_tile + j * 8 * kRow, ks, g, t, bf[j]);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) Traits::mma(acc[i][j], af[i], bf[j]);
      }
    }
    if (more) stage(buf ^ 1);
    __syncthreads();
  }

  // Accumulator fragment (f32 C/D): c0, c1 at (g, 2t, 2t + 1), c2, c3 at (g + 8, 2t, 2t + 1).
  float* c = p.c + batch * p.c_bs;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t r = row0 + warp_m * 64 + i * 16 + g;
      const int64_t col = col0 + warp_n * 32 + j * 8 + 2 * t;
      store_c(p, c, r, col, acc[i][j][0]);
      store_c(p, c, r, col + 1, acc[i][j][1]);
      store_c(p, c, r + 8, col, acc[i][j][2]);
      store_c(p, c, r + 8, col + 1, acc[i][j][3]);
    }
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// 4-wide loads along the contiguous axis are safe when that axis has stride 1, the other axis and
// the batch stride keep every chunk start on a 16-byte boundary, and the base is aligned.
bool vector_ok(const float* base, int64_t fast_stride, int64_t slow_stride, int64_t batch_stride) {
  return fast_stride == 1 && slow_stride % 4 == 0 && batch_stride % 4 == 0 && aligned16(base);
}

void launch_strided(const gemm::Sgemm& g, int64_t count, int64_t a_bs, int64_t b_bs, int64_t c_bs, int device,
                    ops::MatmulPrecision precision) {
  if (g.m == 0 || g.n == 0 || count <= 0) return;
  JOULE_CHECK(g.c != nullptr && (g.k == 0 || (g.a != nullptr && g.b != nullptr)), Code::InvalidArgument,
              "CUDA sgemm: missing operand");
  GemmParams p;
  p.m = g.m;
  p.n = g.n;
  p.k = g.k;
  p.a = g.a;
  p.a_rs = g.a_rs;
  p.a_cs = g.a_cs;
  p.a_bs = a_bs;
  p.b = g.b;
  p.b_rs = g.b_rs;
  p.b_cs = g.b_cs;
  p.b_bs = b_bs;
  p.c = g.c;
  p.c_rs = g.c_rs;
  p.c_cs = g.c_cs;
  p.c_bs = c_bs;
  p.alpha = g.alpha;
  p.beta = g.beta;
  p.bias = g.bias;
  p.activation = static_cast<int>(g.activation);
  // Same rule as the loader's choice of fast axis (view_a / view_b).
  const bool a_k_fast = g.a_cs == 1 || g.a_rs != 1, b_k_fast = g.b_rs == 1 || g.b_cs != 1;
  p.a_vec = a_k_fast ? vector_ok(g.a, g.a_cs, g.a_rs, a_bs) : vector_ok(g.a, g.a_rs, g.a_cs, a_bs);
  p.b_vec = b_k_fast ? vector_ok(g.b, g.b_rs, g.b_cs, b_bs) : vector_ok(g.b, g.b_cs, g.b_rs, b_bs);

  const int64_t tiles = ((g.m + kTileM - 1) / kTileM) * ((g.n + kTileN - 1) / kTileN);
  JOULE_CHECK(tiles <= 0x7fffffff, Code::InvalidArgument, "CUDA sgemm: ", g.m, " x ", g.n, " is too large");
  cudaStream_t s = stream(device);
  constexpr int64_t kMaxZ = 65535;
  for (int64_t b0 = 0; b0 < count; b0 += kMaxZ) {
    const dim3 grid(static_cast<unsigned>(tiles), 1, static_cast<unsigned>(std::min(kMaxZ, count - b0)));
    switch (precision) {
      case ops::MatmulPrecision::Highest:
        sgemm_simt_kernel<<<grid, kThreads, 0, s>>>(p, b0);
        break;
      case ops::MatmulPrecision::High:
        sgemm_mma_kernel<Tf32Traits><<<grid, kThreads, 0, s>>>(p, b0);
        break;
      case ops::MatmulPrecision::Medium:
        sgemm_mma_kernel<Bf16Traits><<<grid, kThreads, 0, s>>>(p, b0);
        break;
    }
    check_cuda(cudaGetLastError(), "CUDA sgemm launch");
  }
}

// ---------------------------------------------------------------------------------------------
// Small kernels of linear's backward.

// dz = dy * act'(saved) (saved: y for ReLU, the pre-activation for GELU), dz contiguous [rows, cols],
// saved contiguous, dy through its strides. The same formulas as kernels::activation_backward.
__global__ void activation_backward_kernel(int activation, const float* dy, int64_t dy_rs, int64_t dy_cs,
                                           const float* saved, float* dz, int64_t rows, int64_t cols) {
  const int64_t total = rows * cols;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = e / cols, c = e % cols;
    const float g = dy[r * dy_rs + c * dy_cs];
    const float s = saved[e];
    float out = g;
    if (activation == static_cast<int>(gemm::Activation::Relu)) {
      out = s > 0.0f ? g : 0.0f;
    } else if (activation == static_cast<int>(gemm::Activation::Gelu)) {
      constexpr float kInvSqrt2 = 0.70710678118654752f, kInvSqrt2Pi = 0.39894228040143268f;
      const float d = 0.5f * (1.0f + erff(s * kInvSqrt2)) + s * kInvSqrt2Pi * expf(-0.5f * s * s);
      out = g * d;
    }
    dz[e] = out;
  }
}

// out[c] (+)= sum_r z[r * rs + c * cs]. A block sums 32 columns: 8 row lanes each walk a strided
// share of the rows (consecutive threads read consecutive columns), partial sums in double (as
// the CPU merges its blocks), then the 8 lanes are added in shared memory in a fixed order.
constexpr int kSumCols = 32, kSumLanes = 8;
__global__ void column_sums_kernel(const float* z, int64_t rs, int64_t cs, int64_t rows, int64_t cols, float* out,
                                   bool accumulate) {
  __shared__ double partial[kSumLanes][kSumCols];
  const int tx = threadIdx.x % kSumCols, ty = threadIdx.x / kSumCols;
  const int64_t c = blockIdx.x * static_cast<int64_t>(kSumCols) + tx;
  double sum = 0.0;
  if (c < cols) {
    for (int64_t r = ty; r < rows; r += kSumLanes) sum += z[r * rs + c * cs];
  }
  partial[ty][tx] = sum;
  __syncthreads();
  if (ty == 0 && c < cols) {
    double total = 0.0;
    for (int l = 0; l < kSumLanes; ++l) total += partial[l][tx];
    out[c] = static_cast<float>(accumulate ? out[c] + total : total);
  }
}

int blocks_for(int64_t elements, int threads) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>((elements + threads - 1) / threads, 65536)));
}

}  // namespace

void sgemm(const gemm::Sgemm& args, int device, ops::MatmulPrecision precision) {
  launch_strided(args, 1, 0, 0, 0, device, precision);
}

void sgemm_strided_batched(const gemm::Sgemm& args, int64_t count, int64_t a_batch_stride, int64_t b_batch_stride,
                           int64_t c_batch_stride, int device, ops::MatmulPrecision precision) {
  launch_strided(args, count, a_batch_stride, b_batch_stride, c_batch_stride, device, precision);
}

void sgemm_batched(const gemm::Sgemm& args, int64_t count, const int64_t* a_offsets, const int64_t* b_offsets,
                   const int64_t* c_offsets, int device, ops::MatmulPrecision precision) {
  if (count <= 0) return;
  // Offsets in arithmetic progression (every contiguous or uniformly strided batch) make one launch.
  auto uniform = [&](const int64_t* off, int64_t* step) {
    *step = count > 1 ? off[1] - off[0] : 0;
    if (off[0] != 0) return false;
    for (int64_t i = 1; i < count; ++i) {
      if (off[i] - off[i - 1] != *step) return false;
    }
    return true;
  };
  int64_t sa, sb, sc;
  if (uniform(a_offsets, &sa) && uniform(b_offsets, &sb) && uniform(c_offsets, &sc)) {
    launch_strided(args, count, sa, sb, sc, device, precision);
    return;
  }
  for (int64_t i = 0; i < count; ++i) {
    gemm::Sgemm one = args;
    one.a = args.a + a_offsets[i];
    one.b = args.b + b_offsets[i];
    one.c = args.c + c_offsets[i];
    launch_strided(one, 1, 0, 0, 0, device, precision);
  }
}

void activation_backward(gemm::Activation activation, const float* dy, int64_t dy_rs, int64_t dy_cs,
                         const float* saved, float* dz, int64_t rows, int64_t cols, int device) {
  const int64_t total = rows * cols;
  if (total == 0) return;
  activation_backward_kernel<<<blocks_for(total, 256), 256, 0, stream(device)>>>(
      static_cast<int>(activation), dy, dy_rs, dy_cs, saved, dz, rows, cols);
  check_cuda(cudaGetLastError(), "CUDA activation backward launch");
}

void column_sums(const float* z, int64_t rs, int64_t cs, int64_t rows, int64_t cols, float* out, bool accumulate,
                 int device) {
  if (cols == 0) return;
  const int64_t blocks = (cols + kSumCols - 1) / kSumCols;
  JOULE_CHECK(blocks <= 0x7fffffff, Code::InvalidArgument, "CUDA column sums: too many columns");
  column_sums_kernel<<<static_cast<unsigned>(blocks), kSumCols * kSumLanes, 0, stream(device)>>>(z, rs, cs, rows, cols,
                                                                                                out, accumulate);
  check_cuda(cudaGetLastError(), "CUDA column sums launch");
}

}  // namespace joule::cuda
