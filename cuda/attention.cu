// Fused attention on CUDA.
//
// Forward: one warp per query row, the lanes splitting the head dim; key/value tiles staged in
// shared memory for the block's rows; an online softmax (running max and sum per row), so the
// score matrix is never stored. Writes out and the per-row log-sum-exp (the CPU backward's saved
// state has the same meaning).
//
// Backward (FlashAttention-2's scheme, the CPU kernel's math): with p_ij = exp(scale q_i.k_j - lse_i)
// recomputed from the saved lse, dp_ij = dO_i.v_j, delta_i = dO_i.O_i and ds_ij = p_ij (dp_ij - delta_i):
//   dV_j = sum_i p_ij dO_i,   dK_j = scale sum_i ds_ij q_i,   dQ_i = scale sum_j ds_ij k_j.
// Three launches: delta per row; dK/dV with one warp per KEY looping over all (visible) query rows;
// dQ with one warp per QUERY row looping over its keys. Every output element is written by exactly
// one thread, summing in a fixed order: no atomics, deterministic run to run.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cuda/backend.h"
#include "cuda/common.h"

namespace joule::cuda {
namespace {

constexpr int kWarps = 8;          // rows (query rows forward and for dQ, key rows for dK/dV) per block
constexpr int kMaxPerLane = 8;     // head dim up to 32 * 8 = 256 (kernels::kAttentionMaxHeadDim)
constexpr int64_t kMaxGridY = 65535;  // CUDA's limit on gridDim.y, which runs over (b, h) pairs
static_assert(32 * kMaxPerLane >= kernels::kAttentionMaxHeadDim, "a warp must cover the largest head dim");

// Keys (forward, dQ) or query rows (dK/dV) per shared-memory tile: two [tile][D] float tiles stay
// at or under 32 KiB (the default 48 KiB limit needs no opt-in) and a small D still gets long tiles.
int tile_rows(int64_t D) { return D <= 64 ? 64 : D <= 128 ? 32 : 16; }

struct DevArgs {
  int64_t H, Tq, Tk, D;
  const float* q;
  const float* k;
  const float* v;
  int64_t q_s[3], k_s[3], v_s[3], o_s[3];
  float* o;
  float* lse;
  int causal;
  float scale;
  int tile;     // keys per shared-memory tile
  int64_t bh0;  // the (b, h) pair of blockIdx.y = 0 (launches are split when B * H > kMaxGridY)
};

__global__ void attention_forward_kernel(DevArgs a) {
  extern __shared__ float smem[];
  float* ks = smem;                 // [tile][D]
  float* vs = smem + a.tile * a.D;  // [tile][D]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t bh = a.bh0 + blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  const bool active = i < a.Tq;
  const float* qrow = a.q + b * a.q_s[0] + h * a.q_s[1] + i * a.q_s[2];
  const float* kbase = a.k + b * a.k_s[0] + h * a.k_s[1];
  const float* vbase = a.v + b * a.v_s[0] + h * a.v_s[1];
  const int64_t offset = a.Tk - a.Tq;

  float qv[kMaxPerLane], acc[kMaxPerLane];
#pragma unroll
  for (int u = 0; u < kMaxPerLane; ++u) {
    const int64_t d = lane + 32 * u;
    qv[u] = active && d < a.D ? qrow[d] * a.scale : 0.f;
    acc[u] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  // Keys this block needs: all, or (causal) up to its last row's diagonal.
  const int64_t last_row = min(a.Tq - 1, static_cast<int64_t>(blockIdx.x) * kWarps + kWarps - 1);
  const int64_t kend = a.causal ? min(a.Tk, last_row + offset + 1) : a.Tk;
  const int64_t my_end = !active ? 0 : (a.causal ? min(a.Tk, i + offset + 1) : a.Tk);

  for (int64_t k0 = 0; k0 < kend; k0 += a.tile) {
    const int64_t n = min(static_cast<int64_t>(a.tile), kend - k0);
    __syncthreads();
    for (int64_t e = threadIdx.x; e < n * a.D; e += blockDim.x) {
      const int64_t j = e / a.D, d = e % a.D;
      ks[e] = kbase[(k0 + j) * a.k_s[2] + d];
      vs[e] = vbase[(k0 + j) * a.v_s[2] + d];
    }
    __syncthreads();
    const int64_t jn = max(static_cast<int64_t>(0), min(n, my_end - k0));
    for (int64_t j = 0; j < jn; ++j) {
      float s = 0.f;
#pragma unroll
      for (int u = 0; u < kMaxPerLane; ++u) {
        const int64_t d = lane + 32 * u;
        if (d < a.D) s += qv[u] * ks[j * a.D + d];
      }
#pragma unroll
      for (int w = 16; w > 0; w /= 2) s += __shfl_xor_sync(0xffffffffu, s, w);
      const float mnew = fmaxf(m, s);
      const float alpha = __expf(m - mnew);  // m = -inf: 0
      const float p = __expf(s - mnew);
      l = l * alpha + p;
#pragma unroll
      for (int u = 0; u < kMaxPerLane; ++u) {
        const int64_t d = lane + 32 * u;
        if (d < a.D) acc[u] = acc[u] * alpha + p * vs[j * a.D + d];
      }
      m = mnew;
    }
  }
  if (!active) return;
  float* orow = a.o + b * a.o_s[0] + h * a.o_s[1] + i * a.o_s[2];
  const float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
  for (int u = 0; u < kMaxPerLane; ++u) {
    const int64_t d = lane + 32 * u;
    if (d < a.D) orow[d] = acc[u] * inv;
  }
  if (lane == 0) a.lse[bh * a.Tq + i] = l > 0.f ? m + logf(l) : -INFINITY;
}

// ---- backward ----

struct BwdArgs {
  int64_t H, Tq, Tk, D;
  const float* q;
  const float* k;
  const float* v;
  const float* o;
  const float* dout;
  const float* lse;  // [B * H * Tq]
  float* dq;
  float* dk;
  float* dv;
  float* delta;      // [B * H * Tq] scratch: dO_i . O_i
  int64_t q_s[3], k_s[3], v_s[3], o_s[3], do_s[3], dq_s[3], dk_s[3], dv_s[3];
  int causal;
  float scale;
  int tile;     // query rows (dK/dV) or keys (dQ) per shared-memory tile
  int64_t bh0;  // the (b, h) pair of blockIdx.y = 0
};

// The row's saved log-sum-exp as the exponent's shift: a row that saw no key has lse = -inf and
// must get p = 0 (the CPU's rule), which exp(s - (+inf)) gives; exp(s - (-inf)) would be inf.
__device__ __forceinline__ float shift_of(float lse) { return lse == -INFINITY ? INFINITY : lse; }

// Sums each lane's x and y over the warp (butterfly: every lane ends with both sums).
__device__ __forceinline__ void warp_sum2(float& x, float& y) {
#pragma unroll
  for (int w = 16; w > 0; w /= 2) {
    x += __shfl_xor_sync(0xffffffffu, x, w);
    y += __shfl_xor_sync(0xffffffffu, y, w);
  }
}

// delta_i = dO_i . O_i: one warp per query row. grid (ceil(Tq / kWarps), pairs), kWarps warps.
__global__ void attention_delta_kernel(BwdArgs a) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t bh = a.bh0 + blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  if (i >= a.Tq) return;  // a whole warp leaves together: the shuffles below see full warps only
  const float* orow = a.o + b * a.o_s[0] + h * a.o_s[1] + i * a.o_s[2];
  const float* dorow = a.dout + b * a.do_s[0] + h * a.do_s[1] + i * a.do_s[2];
  float s = 0.f, unused = 0.f;
  for (int64_t d = lane; d < a.D; d += 32) s += dorow[d] * orow[d];
  warp_sum2(s, unused);
  if (lane == 0) a.delta[bh * a.Tq + i] = s;
}

// dK and dV: one warp per key row j (the lanes split the head dim, k_j and v_j in registers), the
// block's query rows staged tile by tile in shared memory (q, dO, the shift and delta). Causal:
// key j is seen by the rows i >= j - (Tk - Tq), so the block starts at its first key's first row.
// Key rows past Tk ride along (the barriers need every warp) but store nothing.
__global__ void attention_dkdv_kernel(BwdArgs a) {
  extern __shared__ float smem[];
  float* qs = smem;                  // [tile][D]
  float* dos = qs + a.tile * a.D;    // [tile][D]
  float* shift = dos + a.tile * a.D; // [tile]
  float* dl = shift + a.tile;        // [tile]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t bh = a.bh0 + blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int64_t j0 = static_cast<int64_t>(blockIdx.x) * kWarps;
  const int64_t j = j0 + warp;
  const bool active = j < a.Tk;
  const int64_t offset = a.Tk - a.Tq;
  const float* qbase = a.q + b * a.q_s[0] + h * a.q_s[1];
  const float* dobase = a.dout + b * a.do_s[0] + h * a.do_s[1];
  const float* lse = a.lse + bh * a.Tq;
  const float* delta = a.delta + bh * a.Tq;

  // k pre-scaled (as the forward scales q), so s = q . (scale k) is the score itself.
  float kv[kMaxPerLane], vv[kMaxPerLane], dk[kMaxPerLane], dv[kMaxPerLane];
  const float* krow = a.k + b * a.k_s[0] + h * a.k_s[1] + j * a.k_s[2];
  const float* vrow = a.v + b * a.v_s[0] + h * a.v_s[1] + j * a.v_s[2];
#pragma unroll
  for (int u = 0; u < kMaxPerLane; ++u) {
    const int64_t d = lane + 32 * u;
    kv[u] = active && d < a.D ? krow[d] * a.scale : 0.f;
    vv[u] = active && d < a.D ? vrow[d] : 0.f;
    dk[u] = dv[u] = 0.f;
  }
  const int64_t block_begin = a.causal ? max(static_cast<int64_t>(0), j0 - offset) : 0;
  const int64_t my_begin = !active ? a.Tq : (a.causal ? max(static_cast<int64_t>(0), j - offset) : 0);

  for (int64_t i0 = block_begin; i0 < a.Tq; i0 += a.tile) {
    const int64_t n = min(static_cast<int64_t>(a.tile), a.Tq - i0);
    __syncthreads();
    for (int64_t e = threadIdx.x; e < n * a.D; e += blockDim.x) {
      const int64_t r = e / a.D, d = e % a.D;
      qs[e] = qbase[(i0 + r) * a.q_s[2] + d];
      dos[e] = dobase[(i0 + r) * a.do_s[2] + d];
    }
    for (int64_t r = threadIdx.x; r < n; r += blockDim.x) {
      shift[r] = shift_of(lse[i0 + r]);
      dl[r] = delta[i0 + r];
    }
    __syncthreads();
    for (int64_t r = max(static_cast<int64_t>(0), my_begin - i0); r < n; ++r) {
      float s = 0.f, dp = 0.f;
#pragma unroll
      for (int u = 0; u < kMaxPerLane; ++u) {
        const int64_t d = lane + 32 * u;
        if (d < a.D) {
          s += qs[r * a.D + d] * kv[u];
          dp += dos[r * a.D + d] * vv[u];
        }
      }
      warp_sum2(s, dp);
      const float p = expf(s - shift[r]);
      const float ds = p * (dp - dl[r]);
#pragma unroll
      for (int u = 0; u < kMaxPerLane; ++u) {
        const int64_t d = lane + 32 * u;
        if (d < a.D) {
          dv[u] += p * dos[r * a.D + d];
          dk[u] += ds * qs[r * a.D + d];
        }
      }
    }
  }
  if (!active) return;
  // Every key row is written, also one that no query sees (only Tq = 0: with causal alignment at
  // the end the last query row sees every key): zeros, as the CPU writes.
  float* dkrow = a.dk + b * a.dk_s[0] + h * a.dk_s[1] + j * a.dk_s[2];
  float* dvrow = a.dv + b * a.dv_s[0] + h * a.dv_s[1] + j * a.dv_s[2];
#pragma unroll
  for (int u = 0; u < kMaxPerLane; ++u) {
    const int64_t d = lane + 32 * u;
    if (d < a.D) {
      dkrow[d] = dk[u] * a.scale;
      dvrow[d] = dv[u];
    }
  }
}

// dQ: one warp per query row (q_i, dO_i in registers), key/value tiles in shared memory as in
// the forward. A row that sees no key (causal, Tq > Tk) loops over nothing and writes zeros.
__global__ void attention_dq_kernel(BwdArgs a) {
  extern __shared__ float smem[];
  float* ks = smem;                 // [tile][D]
  float* vs = smem + a.tile * a.D;  // [tile][D]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t bh = a.bh0 + blockIdx.y;
  const int64_t b = bh / a.H, h = bh % a.H;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  const bool active = i < a.Tq;
  const float* qrow = a.q + b * a.q_s[0] + h * a.q_s[1] + i * a.q_s[2];
  const float* dorow = a.dout + b * a.do_s[0] + h * a.do_s[1] + i * a.do_s[2];
  const float* kbase = a.k + b * a.k_s[0] + h * a.k_s[1];
  const float* vbase = a.v + b * a.v_s[0] + h * a.v_s[1];
  const int64_t offset = a.Tk - a.Tq;

  float qv[kMaxPerLane], dov[kMaxPerLane], dq[kMaxPerLane];
#pragma unroll
  for (int u = 0; u < kMaxPerLane; ++u) {
    const int64_t d = lane + 32 * u;
    qv[u] = active && d < a.D ? qrow[d] * a.scale : 0.f;
    dov[u] = active && d < a.D ? dorow[d] : 0.f;
    dq[u] = 0.f;
  }
  const float row_shift = active ? shift_of(a.lse[bh * a.Tq + i]) : INFINITY;
  const float row_delta = active ? a.delta[bh * a.Tq + i] : 0.f;
  const int64_t last_row = min(a.Tq - 1, static_cast<int64_t>(blockIdx.x) * kWarps + kWarps - 1);
  const int64_t kend = a.causal ? min(a.Tk, last_row + offset + 1) : a.Tk;
  const int64_t my_end = !active ? 0 : (a.causal ? min(a.Tk, i + offset + 1) : a.Tk);

  for (int64_t k0 = 0; k0 < kend; k0 += a.tile) {
    const int64_t n = min(static_cast<int64_t>(a.tile), kend - k0);
    __syncthreads();
    for (int64_t e = threadIdx.x; e < n * a.D; e += blockDim.x) {
      const int64_t j = e / a.D, d = e % a.D;
      ks[e] = kbase[(k0 + j) * a.k_s[2] + d];
      vs[e] = vbase[(k0 + j) * a.v_s[2] + d];
    }
    __syncthreads();
    const int64_t jn = max(static_cast<int64_t>(0), min(n, my_end - k0));
    for (int64_t j = 0; j < jn; ++j) {
      float s = 0.f, dp = 0.f;
#pragma unroll
      for (int u = 0; u < kMaxPerLane; ++u) {
        const int64_t d = lane + 32 * u;
        if (d < a.D) {
          s += qv[u] * ks[j * a.D + d];
          dp += dov[u] * vs[j * a.D + d];
        }
      }
      warp_sum2(s, dp);
      const float ds = expf(s - row_shift) * (dp - row_delta);
#pragma unroll
      for (int u = 0; u < kMaxPerLane; ++u) {
        const int64_t d = lane + 32 * u;
        if (d < a.D) dq[u] += ds * ks[j * a.D + d];
      }
    }
  }
  if (!active) return;
  float* dqrow = a.dq + b * a.dq_s[0] + h * a.dq_s[1] + i * a.dq_s[2];
#pragma unroll
  for (int u = 0; u < kMaxPerLane; ++u) {
    const int64_t d = lane + 32 * u;
    if (d < a.D) dqrow[d] = dq[u] * a.scale;
  }
}

// Launches `kernel` over grid.x blocks per (b, h) pair, B * H pairs split into chunks of at most
// kMaxGridY (gridDim.y's limit); the kernel adds args.bh0 to blockIdx.y.
template <typename Args>
void launch_over_pairs(void (*kernel)(Args), Args args, int64_t pairs, int64_t blocks_x, size_t shared,
                       cudaStream_t s, const char* what) {
  if (pairs <= 0 || blocks_x <= 0) return;
  for (int64_t bh0 = 0; bh0 < pairs; bh0 += kMaxGridY) {
    args.bh0 = bh0;
    const dim3 grid(static_cast<unsigned>(blocks_x), static_cast<unsigned>(std::min(kMaxGridY, pairs - bh0)));
    kernel<<<grid, kWarps * 32, shared, s>>>(args);
    check_cuda(cudaGetLastError(), what);
  }
}

int64_t blocks_for(int64_t rows) { return (rows + kWarps - 1) / kWarps; }

}  // namespace

void attention_forward(const kernels::AttentionArgs& a, int device) {
  cudaStream_t s = stream(device);
  DevArgs d{};
  d.H = a.H;
  d.Tq = a.Tq;
  d.Tk = a.Tk;
  d.D = a.D;
  d.q = a.q;
  d.k = a.k;
  d.v = a.v;
  for (int x = 0; x < 3; ++x) {
    d.q_s[x] = a.q_s[x];
    d.k_s[x] = a.k_s[x];
    d.v_s[x] = a.v_s[x];
    d.o_s[x] = a.o_s[x];
  }
  d.o = a.o;
  d.lse = a.lse;
  d.causal = a.causal ? 1 : 0;
  d.scale = a.scale;
  d.tile = tile_rows(a.D);
  const size_t shared = sizeof(float) * 2 * d.tile * d.D;
  launch_over_pairs(attention_forward_kernel, d, a.B * a.H, blocks_for(a.Tq), shared, s,
                    "attention forward kernel launch");
}

void attention_backward(const kernels::AttentionArgs& a, int device) {
  const int64_t pairs = a.B * a.H;
  if (pairs == 0) return;
  cudaStream_t s = stream(device);
  BwdArgs d{};
  d.H = a.H;
  d.Tq = a.Tq;
  d.Tk = a.Tk;
  d.D = a.D;
  d.q = a.q;
  d.k = a.k;
  d.v = a.v;
  d.o = a.o;
  d.dout = a.dout;
  d.lse = a.lse;
  d.dq = a.dq;
  d.dk = a.dk;
  d.dv = a.dv;
  for (int x = 0; x < 3; ++x) {
    d.q_s[x] = a.q_s[x];
    d.k_s[x] = a.k_s[x];
    d.v_s[x] = a.v_s[x];
    d.o_s[x] = a.o_s[x];
    d.do_s[x] = a.do_s[x];
    d.dq_s[x] = a.dq_s[x];
    d.dk_s[x] = a.dk_s[x];
    d.dv_s[x] = a.dv_s[x];
  }
  d.causal = a.causal ? 1 : 0;
  d.scale = a.scale;
  d.tile = tile_rows(a.D);
  Scratch delta(device, sizeof(float) * static_cast<size_t>(pairs * a.Tq));
  d.delta = delta.get<float>();
  launch_over_pairs(attention_delta_kernel, d, pairs, blocks_for(a.Tq), 0, s, "attention backward (delta) launch");
  // dK/dV run even when Tq = 0: their rows are then zeros, as on the CPU.
  launch_over_pairs(attention_dkdv_kernel, d, pairs, blocks_for(a.Tk),
                    sizeof(float) * (2 * d.tile * d.D + 2 * d.tile), s, "attention backward (dK, dV) launch");
  launch_over_pairs(attention_dq_kernel, d, pairs, blocks_for(a.Tq), sizeof(float) * 2 * d.tile * d.D, s,
                    "attention backward (dQ) launch");
}

}  // namespace joule::cuda
