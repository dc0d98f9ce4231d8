// Fused attention forward on CUDA: one warp per query row, the lanes splitting the head dim;
// key/value tiles staged in shared memory for the block's rows; an online softmax (running max
// and sum per row), so the score matrix is never stored. Writes out and the per-row log-sum-exp
// (the CPU backward's saved state has the same meaning).
#include <cmath>
#include <cstdint>

#include "cuda/backend.h"
#include "cuda/common.h"

namespace joule::cuda {
namespace {

constexpr int kWarps = 8;          // query rows per block
constexpr int kMaxPerLane = 8;     // head dim up to 32 * 8 = 256

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
  int tile;  // keys per shared-memory tile
};

__global__ void attention_forward_kernel(DevArgs a) {
  extern __shared__ float smem[];
  float* ks = smem;                 // [tile][D]
  float* vs = smem + a.tile * a.D;  // [tile][D]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t bh = blockIdx.y;
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
  d.tile = a.D <= 64 ? 64 : a.D <= 128 ? 32 : 16;
  const size_t shared = sizeof(float) * 2 * d.tile * d.D;
  dim3 grid(static_cast<unsigned>((a.Tq + kWarps - 1) / kWarps), static_cast<unsigned>(a.B * a.H));
  if (grid.x == 0 || grid.y == 0) return;
  attention_forward_kernel<<<grid, kWarps * 32, shared, s>>>(d);
  check_cuda(cudaGetLastError(), "attention forward kernel launch");
}

}  // namespace joule::cuda
