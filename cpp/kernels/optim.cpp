// Fused optimizer steps over whole parameter lists: one pass over each parameter's elements,
// in place, threaded over the concatenation of all the lists' elements.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/threadpool.h"
#include "kernels/nn.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
// The rest of the library is built for baseline x86-64; these memory-bound loops gain from
// wider vectors, so GCC builds a copy per ISA and picks one at load time.
#define JOULE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define JOULE_CLONES
#endif

namespace joule::kernels {
namespace {

constexpr int64_t kGrain = 1 << 15;

// Calls fn(i, begin, end) for sub-ranges of tensor i's elements, the total split evenly among
// workers (large tensors are shared, many small ones go to one worker).
template <typename F>
void for_each_segment(const std::vector<Tensor>& ts, F fn) {
  std::vector<int64_t> start(ts.size() + 1, 0);
  for (size_t i = 0; i < ts.size(); ++i) start[i + 1] = start[i] + ts[i].numel();
  int64_t total = start.back();
  if (total == 0) return;
  int workers = static_cast<int>(std::min<int64_t>(num_threads(), (total + kGrain - 1) / kGrain));
  auto body = [&](int w, int ws) {
    int64_t lo = total * w / ws, hi = total * (w + 1) / ws;
    size_t i = static_cast<size_t>(std::upper_bound(start.begin(), start.end(), lo) - start.begin()) - 1;
    for (; i < ts.size() && start[i] < hi; ++i) {
      int64_t b = std::max(lo, start[i]) - start[i], e = std::min(hi, start[i + 1]) - start[i];
      if (b < e) fn(i, b, e);
    }
  };
  if (workers <= 1) {
    body(0, 1);
  } else {
    run_parallel(workers, body);
  }
}

JOULE_CLONES
void sgd_plain(float* p, const float* g, int64_t n, float lr, float wd, float sign) {
  for (int64_t i = 0; i < n; ++i) p[i] -= lr * (sign * g[i] + wd * p[i]);
}

JOULE_CLONES
void sgd_momentum(float* p, const float* g, float* buf, int64_t n, float lr, float wd, float mom, float damp,
                  bool nesterov, bool init, float sign) {
  if (init) {
    if (nesterov) {
      for (int64_t i = 0; i < n; ++i) {
        float d = sign * g[i] + wd * p[i];
        float b = mom * buf[i] + damp * d;
        buf[i] = b;
        p[i] -= lr * (d + mom * b);
      }
    } else {
      for (int64_t i = 0; i < n; ++i) {
        float d = sign * g[i] + wd * p[i];
        float b = mom * buf[i] + damp * d;
        buf[i] = b;
        p[i] -= lr * b;
      }
    }
  } else {  // the first step: the buffer starts as the gradient itself (no dampening)
    for (int64_t i = 0; i < n; ++i) {
      float d = sign * g[i] + wd * p[i];
      buf[i] = d;
      p[i] -= lr * (nesterov ? d + mom * d : d);
    }
  }
}

JOULE_CLONES
void adam_seg(float* p, const float* g, float* m, float* v, float* vmax, int64_t n, float lr, float b1, float b2,
              float eps, float wd, float decay, float step_size, float inv_sqrt_bc2, float sign) {
  for (int64_t i = 0; i < n; ++i) {
    float gi = sign * g[i];
    float pi = p[i] * decay;  // decoupled decay (AdamW): p *= 1 - lr * wd
    gi += wd * pi;            // L2 (Adam): g += wd * p; wd is 0 for AdamW
    float mi = b1 * m[i] + (1.f - b1) * gi;
    float vi = b2 * v[i] + (1.f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float vv = vi;
    if (vmax) {
      vv = std::max(vmax[i], vi);
      vmax[i] = vv;
    }
    p[i] = pi - step_size * mi / (std::sqrt(vv) * inv_sqrt_bc2 + eps);
  }
  (void)lr;
}

JOULE_CLONES
double sum_squares(const float* x, int64_t n) {
  // Blocks summed in float (vectorised), merged in double.
  double total = 0;
  constexpr int64_t kBlock = 1024;
  for (int64_t b = 0; b < n; b += kBlock) {
    int64_t e = std::min(n, b + kBlock);
    float s = 0;
    for (int64_t i = b; i < e; ++i) s += x[i] * x[i];
    total += s;
  }
  return total;
}

JOULE_CLONES
void scale_seg(float* x, int64_t n, float f) {
  for (int64_t i = 0; i < n; ++i) x[i] *= f;
}

}  // namespace

void sgd_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& bufs,
              const std::vector<uint8_t>& init, const SgdHyper& h) {
  const float lr = static_cast<float>(h.lr), wd = static_cast<float>(h.weight_decay);
  const float sign = h.maximize ? -1.f : 1.f;  // maximize flips the gradient, not the decay (PyTorch)
  const float mom = static_cast<float>(h.momentum), damp = static_cast<float>(1 - h.dampening);
  for_each_segment(params, [&](size_t i, int64_t b, int64_t e) {
    float* p = params[i].data<float>() + b;
    const float* g = grads[i].data<float>() + b;
    if (bufs.empty()) {
      sgd_plain(p, g, e - b, lr, wd, sign);
    } else {
      sgd_momentum(p, g, bufs[i].data<float>() + b, e - b, lr, wd, mom, damp, h.nesterov, init[i] != 0, sign);
    }
  });
}

void adam_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& exp_avg,
               const std::vector<Tensor>& exp_avg_sq, const std::vector<Tensor>& max_exp_avg_sq,
               const std::vector<double>& steps, const AdamHyper& h) {
  for_each_segment(params, [&](size_t i, int64_t b, int64_t e) {
    double t = steps[i];
    double bc1 = 1 - std::pow(h.beta1, t), bc2 = 1 - std::pow(h.beta2, t);
    float* vmax = max_exp_avg_sq.empty() ? nullptr : max_exp_avg_sq[i].data<float>() + b;
    adam_seg(params[i].data<float>() + b, grads[i].data<float>() + b, exp_avg[i].data<float>() + b,
             exp_avg_sq[i].data<float>() + b, vmax, e - b, static_cast<float>(h.lr), static_cast<float>(h.beta1),
             static_cast<float>(h.beta2), static_cast<float>(h.eps),
             static_cast<float>(h.decoupled ? 0.0 : h.weight_decay),
             static_cast<float>(h.decoupled ? 1 - h.lr * h.weight_decay : 1.0), static_cast<float>(h.lr / bc1),
             static_cast<float>(1 / std::sqrt(bc2)), h.maximize ? -1.f : 1.f);
  });
}

double total_norm(const std::vector<Tensor>& ts, double p) {
  int workers = std::max(1, num_threads());
  std::vector<double> partial(static_cast<size_t>(workers), 0.0);
  const bool inf = std::isinf(p), two = p == 2;
  const std::vector<Tensor>& list = ts;
  std::vector<int64_t> start(list.size() + 1, 0);
  for (size_t i = 0; i < list.size(); ++i) start[i + 1] = start[i] + list[i].numel();
  int64_t total = start.back();
  if (total == 0) return 0;
  int ws = static_cast<int>(std::min<int64_t>(workers, (total + kGrain - 1) / kGrain));
  auto body = [&](int w, int nw) {
    int64_t lo = total * w / nw, hi = total * (w + 1) / nw;
    double acc = 0;
    for (size_t i = 0; i < list.size(); ++i) {
      int64_t b = std::max(lo, start[i]) - start[i], e = std::min(hi, start[i + 1]) - start[i];
      if (b >= e) continue;
      const float* x = list[i].data<float>() + b;
      int64_t n = e - b;
      if (two) {
        acc += sum_squares(x, n);
      } else if (inf) {
        for (int64_t k = 0; k < n; ++k) {
          double a = std::fabs(static_cast<double>(x[k]));
          if (!(a <= acc)) acc = a;  // NaN wins, as in PyTorch
          if (std::isnan(acc)) break;
        }
      } else {
        for (int64_t k = 0; k < n; ++k) acc += std::pow(std::fabs(static_cast<double>(x[k])), p);
      }
    }
    partial[static_cast<size_t>(w)] = acc;
  };
  if (ws <= 1) {
    body(0, 1);
  } else {
    run_parallel(ws, body);
  }
  double acc = 0;
  // The max keeps a NaN from any worker (a NaN acc must not be replaced by a later number).
  for (double v : partial) acc = inf ? (std::isnan(acc) || v <= acc ? acc : v) : acc + v;
  if (inf) return acc;
  return two ? std::sqrt(acc) : std::pow(acc, 1.0 / p);
}

void scale_inplace(const std::vector<Tensor>& ts, double factor) {
  for_each_segment(ts, [&](size_t i, int64_t b, int64_t e) { scale_seg(ts[i].data<float>() + b, e - b, static_cast<float>(factor)); });
}

}  // namespace joule::kernels
