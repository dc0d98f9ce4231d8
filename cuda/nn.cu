// Fused losses, layer norm and random numbers on CUDA, following the CPU kernels (kernels/nn.cpp,
// ops/creation.cpp) step for step. Sums are float32 trees in a fixed order (no atomics), so every
// result is reproducible run to run; per-row scalars (lse, losses, rstd) are finished in double
// as on the CPU. Products that the CPU rounds separately use __fmul_rn/__fadd_rn so that nvcc
// does not contract them into FMAs (which would round differently from the CPU).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/random.h"
#include "cuda/backend.h"
#include "cuda/common.h"

namespace joule::cuda {
namespace {

constexpr int kBlock = 256;

#define JOULE_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

unsigned grid_for(int64_t items) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(items, 1 << 30)));
}
unsigned blocks_for(int64_t n) { return grid_for((n + kBlock - 1) / kBlock); }
int pow2_threads(int64_t n) {
  int t = 32;
  while (t < kBlock && t < n) t *= 2;
  return t;
}

// Every thread of the block calls these with its value; all get the total (a fixed tree).
template <typename T>
__device__ T block_sum(T v, T* sh) {
  const int tid = threadIdx.x;
  sh[tid] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (tid < s) sh[tid] += sh[tid + s];
    __syncthreads();
  }
  T r = sh[0];
  __syncthreads();
  return r;
}

__device__ float block_max(float v, float* sh) {  // ignores NaN, like std::max(m, x) on the CPU
  const int tid = threadIdx.x;
  sh[tid] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (tid < s) sh[tid] = fmaxf(sh[tid], sh[tid + s]);
    __syncthreads();
  }
  float r = sh[0];
  __syncthreads();
  return r;
}

// ---- cross entropy: block per row (n, s); the row's C logits are S apart ----

struct CeDev {
  const float* logits;
  int64_t n, c, s;
  const int32_t* index_target;
  const float* prob_target;
  double eps;
  int64_t ignore_index;
};

CeDev ce_dev(const kernels::CrossEntropyArgs& a) {
  return {a.logits, a.n, a.c, a.s, a.index_target, a.prob_target, a.label_smoothing, a.ignore_index};
}

__global__ void ce_forward_kernel(CeDev a, float* row_loss, float* lse_out) {
  __shared__ float sh[kBlock];
  __shared__ double shd[kBlock];
  const int64_t rows = a.n * a.s, C = a.c, S = a.s;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t n = r / S, s = r % S;
    const float* x = a.logits + n * C * S + s;
    float mx = -INFINITY;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) mx = fmaxf(mx, x[c * S]);
    mx = block_max(mx, sh);
    float sum = 0.f, sum_x = 0.f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      sum += expf(x[c * S] - mx);
      sum_x += x[c * S];
    }
    sum = block_sum(sum, sh);
    sum_x = block_sum(sum_x, sh);
    // Every logit -inf: lse is -inf (the CPU keeps ignored rows NaN-free this way).
    const double lse = mx == -INFINITY ? -INFINITY : static_cast<double>(mx) + log(static_cast<double>(sum));
    double loss = 0;
    if (a.index_target) {
      const int32_t y = a.index_target[r];
      if (y != a.ignore_index) {
        loss = (1 - a.eps) * (lse - x[static_cast<int64_t>(y) * S]);
        if (a.eps != 0) loss += a.eps * (lse - static_cast<double>(sum_x) / static_cast<double>(C));
      }
    } else {
      const float* t = a.prob_target + n * C * S + s;
      double part = 0;
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        const double tc = (1 - a.eps) * t[c * S] + a.eps / static_cast<double>(C);
        if (tc != 0) part += tc * (lse - x[c * S]);
      }
      loss = block_sum(part, shd);
    }
    if (threadIdx.x == 0) {
      lse_out[r] = static_cast<float>(lse);
      row_loss[r] = static_cast<float>(loss);
    }
  }
}

// One block: *total = sum of row losses (in a fixed order), divided by the rows whose target is
// not ignore_index when `mean` (0 / 0 = NaN when all are ignored, as on the CPU).
__global__ void ce_total_kernel(const float* row_loss, int64_t rows, const int32_t* index_target, int64_t ignore_index,
                                int mean, float* total) {
  __shared__ double sh[1024];
  double sum = 0, count = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    sum += row_loss[r];
    count += index_target ? (index_target[r] != ignore_index ? 1.0 : 0.0) : 1.0;
  }
  sum = block_sum(sum, sh);
  count = block_sum(count, sh);
  if (threadIdx.x == 0) *total = static_cast<float>(mean ? sum / count : sum);
}

// One block: *count = the rows whose target is not ignore_index.
__global__ void ce_count_kernel(const int32_t* index_target, int64_t rows, int64_t ignore_index, double* count) {
  __shared__ double sh[1024];
  double k = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) k += index_target[r] != ignore_index ? 1.0 : 0.0;
  k = block_sum(k, sh);
  if (threadIdx.x == 0) *count = k;
}

__global__ void ce_backward_kernel(CeDev a, const float* lse, const float* row_scale, const float* grad_scalar,
                                   const double* count_dev, double count_host, float* grad) {
  __shared__ double shd[kBlock];
  const int64_t rows = a.n * a.s, C = a.c, S = a.s;
  const float off = static_cast<float>(a.eps / static_cast<double>(C));
  const float one_minus_eps = static_cast<float>(1 - a.eps);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t n = r / S, s = r % S;
    const float* x = a.logits + n * C * S + s;
    float* g = grad + n * C * S + s;
    float k;
    if (row_scale) {
      k = row_scale[r];
    } else {
      const double count = count_dev ? *count_dev : count_host;
      k = static_cast<float>(static_cast<double>(*grad_scalar) / count);
    }
    const float l = lse[r];
    if (a.index_target) {
      const int32_t y = a.index_target[r];
      if (y == a.ignore_index) {
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) g[c * S] = 0.f;
        continue;
      }
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        float v = __fmul_rn(k, __fsub_rn(expf(x[c * S] - l), off));
        if (c == y) v = __fsub_rn(v, __fmul_rn(k, one_minus_eps));
        g[c * S] = v;
      }
    } else {
      const float* t = a.prob_target + n * C * S + s;
      double part = 0;
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) part += (1 - a.eps) * t[c * S] + a.eps / static_cast<double>(C);
      const float ts = static_cast<float>(block_sum(part, shd));
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        const float tc = __fadd_rn(static_cast<float>((1 - a.eps) * t[c * S]), off);
        g[c * S] = __fmul_rn(k, __fsub_rn(__fmul_rn(expf(x[c * S] - l), ts), tc));
      }
    }
  }
}

__global__ void invalid_target_kernel(const int32_t* t, int64_t n, int64_t classes, int64_t ignore_index,
                                      unsigned long long* first) {
  JOULE_GRID_STRIDE(i, n) {
    const int64_t v = t[i];
    if (v != ignore_index && (v < 0 || v >= classes)) atomicMin(first, static_cast<unsigned long long>(i));
  }
}

// ---- layer norm over the last dim d of contiguous [rows, d] ----

__global__ void layer_norm_forward_kernel(const float* x, const float* gamma, const float* beta, int64_t rows,
                                          int64_t d, double eps, float* y, float* mean, float* rstd) {
  __shared__ float sh[kBlock];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * d;
    float s = 0.f;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) s += xr[i];
    s = block_sum(s, sh);
    const float mf = static_cast<float>(static_cast<double>(s) / static_cast<double>(d));
    float v = 0.f;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
      const float t = xr[i] - mf;
      v += t * t;
    }
    v = block_sum(v, sh);
    const float rs = static_cast<float>(1.0 / sqrt(static_cast<double>(v) / static_cast<double>(d) + eps));
    if (threadIdx.x == 0) {
      mean[r] = mf;
      rstd[r] = rs;
    }
    float* yr = y + r * d;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
      const float h = __fmul_rn(xr[i] - mf, rs);
      yr[i] = __fadd_rn(gamma ? __fmul_rn(h, gamma[i]) : h, beta ? beta[i] : 0.f);
    }
  }
}

__global__ void layer_norm_dx_kernel(const float* dy, const float* x, const float* mean, const float* rstd,
                                     const float* gamma, int64_t rows, int64_t d, float* dx) {
  __shared__ float sh[kBlock];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* g = dy + r * d;
    const float* xr = x + r * d;
    const float m = mean[r], rs = rstd[r];
    float a = 0.f, b = 0.f;  // sums of dxhat and of dxhat * xhat
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
      const float h = __fmul_rn(xr[i] - m, rs);
      const float gh = gamma ? __fmul_rn(g[i], gamma[i]) : g[i];
      a += gh;
      b += __fmul_rn(gh, h);
    }
    a = block_sum(a, sh);
    b = block_sum(b, sh);
    const float ma = static_cast<float>(static_cast<double>(a) / static_cast<double>(d));
    const float mb = static_cast<float>(static_cast<double>(b) / static_cast<double>(d));
    float* o = dx + r * d;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
      const float h = __fmul_rn(xr[i] - m, rs);
      const float gh = gamma ? __fmul_rn(g[i], gamma[i]) : g[i];
      o[i] = __fmul_rn(rs, __fsub_rn(gh - ma, __fmul_rn(h, mb)));
    }
  }
}

// Thread per (column, chunk of rows): partial sums of dy * xhat and dy, in row order.
__global__ void layer_norm_affine_kernel(const float* dy, const float* x, const float* mean, const float* rstd,
                                         int64_t rows, int64_t d, int64_t chunk, int64_t chunks, float* part_g,
                                         float* part_b) {
  JOULE_GRID_STRIDE(idx, d * chunks) {
    const int64_t col = idx % d, c = idx / d;
    const int64_t r1 = min(rows, (c + 1) * chunk);
    float sg = 0.f, sb = 0.f;
    for (int64_t r = c * chunk; r < r1; ++r) {
      const float g = dy[r * d + col];
      sg += __fmul_rn(g, __fmul_rn(x[r * d + col] - mean[r], rstd[r]));
      sb += g;
    }
    part_g[idx] = sg;
    part_b[idx] = sb;
  }
}

// Thread per column: the chunks' partial sums, in chunk order.
__global__ void layer_norm_affine_combine_kernel(const float* part_g, const float* part_b, int64_t d, int64_t chunks,
                                                 float* dgamma, float* dbeta) {
  JOULE_GRID_STRIDE(col, d) {
    float sg = 0.f, sb = 0.f;
    for (int64_t c = 0; c < chunks; ++c) {
      sg += part_g[c * d + col];
      sb += part_b[c * d + col];
    }
    if (dgamma) dgamma[col] = sg;
    if (dbeta) dbeta[col] = sb;
  }
}

// ---- random draws: core/random.h's Philox 4x32-10, the CPU's definition itself ----

// Thread per Philox block: elements 4 * blk .. 4 * blk + 3 (ops/creation.cpp's generate()).
template <RandomKind kKind>
__global__ void random_kernel(void* out, int64_t n, uint64_t seed, uint64_t first, double a, double b) {
  const int64_t blocks = (n + 3) / 4;
  JOULE_GRID_STRIDE(blk, blocks) {
    const PhiloxBlock q = philox(seed, first + static_cast<uint64_t>(blk));
    const uint32_t* r = q.word;
    for (int j = 0; j < 4 && blk * 4 + j < n; ++j) {
      const int64_t i = blk * 4 + j;
      if constexpr (kKind == RandomKind::Uniform) {
        static_cast<float*>(out)[i] = uniform01(r[j]);
      } else if constexpr (kKind == RandomKind::Normal) {
        const int pair = j / 2 * 2;  // Box-Muller on (r0, r1) and (r2, r3)
        const double u1 = (static_cast<double>(r[pair]) + 1.0) / 4294967296.0;
        const double u2 = static_cast<double>(r[pair + 1]) / 4294967296.0;
        const double radius = sqrt(-2.0 * log(u1));
        const double angle = 6.283185307179586 * u2;
        static_cast<float*>(out)[i] = static_cast<float>(j % 2 == 0 ? radius * cos(angle) : radius * sin(angle));
      } else if constexpr (kKind == RandomKind::Int) {
        const uint64_t range = static_cast<uint64_t>(b);
        static_cast<int32_t*>(out)[i] =
            static_cast<int32_t>(static_cast<int64_t>(a) + static_cast<int64_t>((static_cast<uint64_t>(r[j]) * range) >> 32));
      } else {
        static_cast<float*>(out)[i] = static_cast<double>(r[j]) < a * 4294967296.0 ? 1.f : 0.f;
      }
    }
  }
}

int64_t first_bad(int device, cudaStream_t st, const int32_t* data, int64_t n, int32_t* value,
                  void (*launch)(cudaStream_t, const int32_t*, int64_t, unsigned long long*, const void*),
                  const void* ctx) {
  auto* first = static_cast<unsigned long long*>(device_malloc(device, sizeof(unsigned long long)));
  unsigned long long pos = ~0ull;
  try {
    check_cuda(cudaMemsetAsync(first, 0xff, sizeof(unsigned long long), st), "cudaMemsetAsync");
    launch(st, data, n, first, ctx);
    check_cuda(cudaGetLastError(), "target check kernel launch");
    copy_to_host(device, &pos, first, sizeof(pos));
    if (pos != ~0ull) copy_to_host(device, value, data + pos, sizeof(int32_t));
  } catch (...) {
    device_free(device, first, sizeof(unsigned long long));
    throw;
  }
  device_free(device, first, sizeof(unsigned long long));
  return pos == ~0ull ? -1 : static_cast<int64_t>(pos);
}

}  // namespace

int64_t first_invalid_target(const Tensor& target, int64_t classes, int64_t ignore_index, int32_t* value) {
  JOULE_CHECK(target.dtype == DType::Int32 && target.is_contiguous(), Code::Internal,
              "first_invalid_target expects a contiguous int32 tensor");
  const int64_t n = target.numel();
  if (n == 0) return -1;
  const int device = target.device().index;
  struct Ctx {
    int64_t classes, ignore_index;
  } ctx{classes, ignore_index};
  return first_bad(device, stream(device), target.data<int32_t>(), n, value,
                   [](cudaStream_t st, const int32_t* t, int64_t count, unsigned long long* first, const void* c) {
                     const Ctx& k = *static_cast<const Ctx*>(c);
                     invalid_target_kernel<<<blocks_for(count), kBlock, 0, st>>>(t, count, k.classes, k.ignore_index,
                                                                                 first);
                   },
                   &ctx);
}

void cross_entropy_forward(const kernels::CrossEntropyArgs& a, int device, float* row_loss, float* lse, float* total,
                           bool mean) {
  const int64_t rows = a.n * a.s;
  cudaStream_t st = stream(device);
  float* losses = row_loss;
  void* scratch = nullptr;
  const size_t scratch_bytes = sizeof(float) * static_cast<size_t>(rows);
  if (!row_loss && rows > 0) losses = static_cast<float*>(scratch = device_malloc(device, scratch_bytes));
  try {
    if (rows > 0) {
      ce_forward_kernel<<<grid_for(rows), pow2_threads(a.c), 0, st>>>(ce_dev(a), losses, lse);
      check_cuda(cudaGetLastError(), "cross entropy kernel launch");
    }
    if (!row_loss) {
      ce_total_kernel<<<1, 1024, 0, st>>>(losses, rows, a.index_target, a.ignore_index, mean ? 1 : 0, total);
      check_cuda(cudaGetLastError(), "cross entropy total kernel launch");
    }
  } catch (...) {
    if (scratch) device_free(device, scratch, scratch_bytes);
    throw;
  }
  if (scratch) device_free(device, scratch, scratch_bytes);
}

void cross_entropy_backward(const kernels::CrossEntropyArgs& a, int device, const float* lse, const float* row_scale,
                            const float* grad_scalar, bool mean, float* grad) {
  const int64_t rows = a.n * a.s;
  if (rows == 0 || a.c == 0) return;
  cudaStream_t st = stream(device);
  double* count = nullptr;
  if (!row_scale && mean && a.index_target) {
    count = static_cast<double*>(device_malloc(device, sizeof(double)));
    ce_count_kernel<<<1, 1024, 0, st>>>(a.index_target, rows, a.ignore_index, count);
  }
  const double count_host = !row_scale && mean ? static_cast<double>(rows) : 1.0;
  ce_backward_kernel<<<grid_for(rows), pow2_threads(a.c), 0, st>>>(ce_dev(a), lse, row_scale, grad_scalar, count,
                                                                   count_host, grad);
  cudaError_t status = cudaGetLastError();
  if (count) device_free(device, count, sizeof(double));
  check_cuda(status, "cross entropy backward kernel launch");
}

void layer_norm_forward(int device, const float* x, const float* gamma, const float* beta, int64_t rows, int64_t d,
                        double eps, float* y, float* mean, float* rstd) {
  if (rows == 0) return;
  layer_norm_forward_kernel<<<grid_for(rows), pow2_threads(d), 0, stream(device)>>>(x, gamma, beta, rows, d, eps, y,
                                                                                   mean, rstd);
  check_cuda(cudaGetLastError(), "layer norm kernel launch");
}

void layer_norm_backward(int device, const float* dy, const float* x, const float* mean, const float* rstd,
                         const float* gamma, int64_t rows, int64_t d, float* dx, float* dgamma, float* dbeta) {
  cudaStream_t st = stream(device);
  if (dx && rows > 0 && d > 0) {
    layer_norm_dx_kernel<<<grid_for(rows), pow2_threads(d), 0, st>>>(dy, x, mean, rstd, gamma, rows, d, dx);
    check_cuda(cudaGetLastError(), "layer norm backward kernel launch");
  }
  if ((dgamma || dbeta) && d > 0) {
    // About 64K threads: chunks of rows when the columns alone are too few.
    int64_t chunks = std::max<int64_t>(1, std::min<int64_t>((rows + 63) / 64, 65536 / d));
    const int64_t chunk = std::max<int64_t>(1, (rows + chunks - 1) / chunks);
    chunks = std::max<int64_t>(1, (rows + chunk - 1) / chunk);
    const size_t bytes = sizeof(float) * static_cast<size_t>(2 * d * chunks);
    float* part = static_cast<float*>(device_malloc(device, bytes));
    layer_norm_affine_kernel<<<blocks_for(d * chunks), kBlock, 0, st>>>(dy, x, mean, rstd, rows, d, chunk, chunks, part,
                                                                        part + d * chunks);
    cudaError_t status = cudaGetLastError();
    if (status == cudaSuccess) {
      layer_norm_affine_combine_kernel<<<blocks_for(d), kBlock, 0, st>>>(part, part + d * chunks, d, chunks, dgamma,
                                                                         dbeta);
      status = cudaGetLastError();
    }
    device_free(device, part, bytes);
    check_cuda(status, "layer norm affine gradient kernel launch");
  }
}

void random_fill(RandomKind kind, const Tensor& out, uint64_t seed, uint64_t first, double a, double b) {
  JOULE_CHECK(out.is_contiguous(), Code::Internal, "random_fill expects a contiguous tensor");
  const int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t st = stream(out.device().index);
  const unsigned grid = blocks_for((n + 3) / 4);
  switch (kind) {
    case RandomKind::Uniform: random_kernel<RandomKind::Uniform><<<grid, kBlock, 0, st>>>(out.raw(), n, seed, first, a, b); break;
    case RandomKind::Normal: random_kernel<RandomKind::Normal><<<grid, kBlock, 0, st>>>(out.raw(), n, seed, first, a, b); break;
    case RandomKind::Int: random_kernel<RandomKind::Int><<<grid, kBlock, 0, st>>>(out.raw(), n, seed, first, a, b); break;
    case RandomKind::Bernoulli:
      random_kernel<RandomKind::Bernoulli><<<grid, kBlock, 0, st>>>(out.raw(), n, seed, first, a, b);
      break;
  }
  check_cuda(cudaGetLastError(), "random kernel launch");
}

}  // namespace joule::cuda
