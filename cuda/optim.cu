// Fused optimizer steps on CUDA (SGD with momentum/Nesterov/weight decay, Adam/AdamW with
// amsgrad), the gradient norm and in-place scaling, one grid-stride launch per parameter tensor.
// Each element follows kernels/optim.cpp's operations in the same order, every product and sum
// rounded on its own (__fmul_rn/__fadd_rn: nvcc would otherwise contract them into FMAs, which
// the CPU's baseline/AVX2/AVX-512F builds do not do), so CPU and GPU agree bit for bit.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cuda/backend.h"
#include "cuda/common.h"

namespace joule::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kNormChunk = 8192;  // elements per block of the norm's first pass

#define JOULE_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

unsigned blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

__device__ inline float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ inline float add(float a, float b) { return __fadd_rn(a, b); }
__device__ inline float sub(float a, float b) { return __fsub_rn(a, b); }

__global__ void sgd_plain_kernel(float* p, const float* g, int64_t n, float lr, float wd, float sign) {
  JOULE_GRID_STRIDE(i, n) { p[i] = sub(p[i], mul(lr, add(mul(sign, g[i]), mul(wd, p[i])))); }
}

__global__ void sgd_momentum_kernel(float* p, const float* g, float* buf, int64_t n, float lr, float wd, float mom,
                                    float damp, int nesterov, int init, float sign) {
  JOULE_GRID_STRIDE(i, n) {
    const float d = add(mul(sign, g[i]), mul(wd, p[i]));
    if (init) {
      const float b = add(mul(mom, buf[i]), mul(damp, d));
      buf[i] = b;
      p[i] = sub(p[i], mul(lr, nesterov ? add(d, mul(mom, b)) : b));
    } else {  // the first step: the buffer starts as the gradient itself (no dampening)
      buf[i] = d;
      p[i] = sub(p[i], mul(lr, nesterov ? add(d, mul(mom, d)) : d));
    }
  }
}

__global__ void adam_kernel(float* p, const float* g, float* m, float* v, float* vmax, int64_t n, float b1, float b2,
                            float eps, float wd, float decay, float step_size, float inv_sqrt_bc2, float sign) {
  JOULE_GRID_STRIDE(i, n) {
    float gi = mul(sign, g[i]);
    const float pi = mul(p[i], decay);  // decoupled decay (AdamW): p *= 1 - lr * wd
    gi = add(gi, mul(wd, pi));          // L2 (Adam): g += wd * p; wd is 0 for AdamW
    const float mi = add(mul(b1, m[i]), mul(1.f - b1, gi));
    const float vi = add(mul(b2, v[i]), mul(mul(1.f - b2, gi), gi));
    m[i] = mi;
    v[i] = vi;
    float vv = vi;
    if (vmax) {
      vv = vmax[i] < vi ? vi : vmax[i];  // std::max(vmax, vi)
      vmax[i] = vv;
    }
    p[i] = sub(pi, __fdiv_rn(mul(step_size, mi), add(mul(__fsqrt_rn(vv), inv_sqrt_bc2), eps)));
  }
}

// Block b of a tensor: the p-norm contribution of elements [b * kNormChunk, (b + 1) * kNormChunk),
// combined in a fixed tree. kind 2: sum of squares (float); kind 0: max |x| (NaN wins); kind 1:
// sum of |x|^p (double, as on the CPU).
__global__ void norm_partial_kernel(const float* x, int64_t n, int kind, double p, double* partial) {
  __shared__ double sh[kThreads];
  const int tid = threadIdx.x;
  const int64_t b0 = blockIdx.x * kNormChunk, b1 = min(n, b0 + kNormChunk);
  double acc = 0;
  if (kind == 2) {
    float s = 0.f;
    for (int64_t i = b0 + tid; i < b1; i += blockDim.x) s = add(s, mul(x[i], x[i]));
    acc = s;
  } else if (kind == 0) {
    for (int64_t i = b0 + tid; i < b1; i += blockDim.x) {
      const double a = fabs(static_cast<double>(x[i]));
      if (!(a <= acc) && acc == acc) acc = a;
    }
  } else {
    for (int64_t i = b0 + tid; i < b1; i += blockDim.x) acc += pow(fabs(static_cast<double>(x[i])), p);
  }
  sh[tid] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (tid < s) {
      const double a = sh[tid], b = sh[tid + s];
      if (kind == 0) sh[tid] = (a != a) ? a : (!(b <= a) ? b : a);
      else if (kind == 2) sh[tid] = static_cast<float>(a) + static_cast<float>(b);
      else sh[tid] = a + b;
    }
    __syncthreads();
  }
  if (tid == 0) partial[blockIdx.x] = sh[0];
}

__global__ void scale_kernel(float* x, int64_t n, float f) {
  JOULE_GRID_STRIDE(i, n) { x[i] = mul(x[i], f); }
}

}  // namespace

void sgd_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& bufs,
              const std::vector<uint8_t>& init, const kernels::SgdHyper& h) {
  const float lr = static_cast<float>(h.lr), wd = static_cast<float>(h.weight_decay);
  const float sign = h.maximize ? -1.f : 1.f;  // maximize flips the gradient, not the decay (PyTorch)
  const float mom = static_cast<float>(h.momentum), damp = static_cast<float>(1 - h.dampening);
  for (size_t i = 0; i < params.size(); ++i) {
    const int64_t n = params[i].numel();
    if (n == 0) continue;
    cudaStream_t st = stream(params[i].device().index);
    if (bufs.empty()) {
      sgd_plain_kernel<<<blocks_for(n), kThreads, 0, st>>>(params[i].data<float>(), grads[i].data<float>(), n, lr, wd,
                                                           sign);
    } else {
      sgd_momentum_kernel<<<blocks_for(n), kThreads, 0, st>>>(params[i].data<float>(), grads[i].data<float>(),
                                                              bufs[i].data<float>(), n, lr, wd, mom, damp,
                                                              h.nesterov ? 1 : 0, init[i] != 0 ? 1 : 0, sign);
    }
    check_cuda(cudaGetLastError(), "sgd kernel launch");
  }
}

void adam_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& exp_avg,
               const std::vector<Tensor>& exp_avg_sq, const std::vector<Tensor>& max_exp_avg_sq,
               const std::vector<double>& steps, const kernels::AdamHyper& h) {
  for (size_t i = 0; i < params.size(); ++i) {
    const int64_t n = params[i].numel();
    if (n == 0) continue;
    // The per-tensor scalars exactly as the CPU computes them (double, then rounded to float).
    const double t = steps[i];
    const double bc1 = 1 - std::pow(h.beta1, t), bc2 = 1 - std::pow(h.beta2, t);
    float* vmax = max_exp_avg_sq.empty() ? nullptr : max_exp_avg_sq[i].data<float>();
    cudaStream_t st = stream(params[i].device().index);
    adam_kernel<<<blocks_for(n), kThreads, 0, st>>>(
        params[i].data<float>(), grads[i].data<float>(), exp_avg[i].data<float>(), exp_avg_sq[i].data<float>(), vmax, n,
        static_cast<float>(h.beta1), static_cast<float>(h.beta2), static_cast<float>(h.eps),
        static_cast<float>(h.decoupled ? 0.0 : h.weight_decay),
        static_cast<float>(h.decoupled ? 1 - h.lr * h.weight_decay : 1.0), static_cast<float>(h.lr / bc1),
        static_cast<float>(1 / std::sqrt(bc2)), h.maximize ? -1.f : 1.f);
    check_cuda(cudaGetLastError(), "adam kernel launch");
  }
}

double total_norm(const std::vector<Tensor>& ts, double p) {
  const bool inf = std::isinf(p), two = p == 2;
  const int kind = inf ? 0 : two ? 2 : 1;
  std::vector<int64_t> first(ts.size() + 1, 0);  // each tensor's first partial
  for (size_t i = 0; i < ts.size(); ++i) first[i + 1] = first[i] + (ts[i].numel() + kNormChunk - 1) / kNormChunk;
  const int64_t count = first.back();
  if (count == 0) return 0;
  const int device = ts[0].device().index;
  cudaStream_t st = stream(device);
  const size_t bytes = sizeof(double) * static_cast<size_t>(count);
  auto* partial = static_cast<double*>(device_malloc(device, bytes));
  std::vector<double> host(static_cast<size_t>(count));
  try {
    for (size_t i = 0; i < ts.size(); ++i) {
      const int64_t blocks = first[i + 1] - first[i];
      if (blocks == 0) continue;
      norm_partial_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, st>>>(ts[i].data<float>(), ts[i].numel(), kind,
                                                                             p, partial + first[i]);
      check_cuda(cudaGetLastError(), "norm kernel launch");
    }
    copy_to_host(device, host.data(), partial, bytes);
  } catch (...) {
    device_free(device, partial, bytes);
    throw;
  }
  device_free(device, partial, bytes);
  double acc = 0;
  for (double v : host) acc = inf ? (!(v <= acc) && acc == acc ? v : acc) : acc + v;
  if (inf) return acc;
  return two ? std::sqrt(acc) : std::pow(acc, 1.0 / p);
}

void scale_inplace(const std::vector<Tensor>& ts, double factor) {
  for (const Tensor& t : ts) {
    const int64_t n = t.numel();
    if (n == 0) continue;
    scale_kernel<<<blocks_for(n), kThreads, 0, stream(t.device().index)>>>(t.data<float>(), n, static_cast<float>(factor));
    check_cuda(cudaGetLastError(), "scale kernel launch");
  }
}

}  // namespace joule::cuda
