// CPU kernels of the fused neural-network ops: the activation derivative and bias gradient of
// linear, fused cross entropy (log-softmax + NLL + smoothing + ignore_index) and layer norm.
#include "kernels/nn.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/threadpool.h"

namespace joule::kernels {
namespace {

constexpr int64_t kGrain = 1 << 14;  // elements per worker below which threads cost more than they save

inline int64_t rows_grain(int64_t cols) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)); }

void relu_backward_row(const float* __restrict g, const float* __restrict s, float* __restrict o, int64_t n) {
  for (int64_t c = 0; c < n; ++c) {
    float gc = g[c];
    o[c] = s[c] > 0.f ? gc : 0.f;
  }
}

}  // namespace

void activation_backward(gemm::Activation act, const float* dy, int64_t dy_rs, int64_t dy_cs, const float* saved,
                         float* dz, int64_t rows, int64_t cols) {
  parallel_for(rows, rows_grain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* g = dy + r * dy_rs;
      const float* s = saved + r * cols;
      float* o = dz + r * cols;
      if (act == gemm::Activation::Relu) {
        // Both operands loaded unconditionally so that the select compiles to a vector compare
        // and mask: the branch on the sign (half the signs random) cost ~4 ns per element.
        if (dy_cs == 1) {
          relu_backward_row(g, s, o, cols);
        } else {
          for (int64_t c = 0; c < cols; ++c) {
            float gc = g[c * dy_cs];
            o[c] = s[c] > 0.f ? gc : 0.f;
          }
        }
      } else if (act == gemm::Activation::Gelu) {
        // d/dz [z Φ(z)] = Φ(z) + z φ(z), vectorised on the active ISA (the scalar erf and exp
        // took 12 ns per element: a quarter of a GPT training step).
        if (dy_cs == 1) {
          gemm::gelu_backward(g, s, o, cols);
        } else {
          for (int64_t c = 0; c < cols; ++c) o[c] = g[c * dy_cs];
          gemm::gelu_backward(o, s, o, cols);
        }
      } else {
        for (int64_t c = 0; c < cols; ++c) o[c] = g[c * dy_cs];
      }
    }
  });
}

void column_sums(const float* z, int64_t rs, int64_t cs, int64_t rows, int64_t cols, float* out, bool accumulate) {
  // Columns are split among workers; each walks all rows over its own columns, so the inner
  // loop is contiguous when cs == 1 and no partial sums need merging.
  int64_t grain = std::max<int64_t>(16, kGrain / std::max<int64_t>(rows, 1));
  parallel_for(cols, grain, [&](int64_t c0, int64_t c1) {
    int64_t w = c1 - c0;
    std::vector<double> acc(static_cast<size_t>(w), 0.0);
    std::vector<float> part(static_cast<size_t>(w));
    // Blocks of rows summed in float (vectorisable), blocks merged in double.
    constexpr int64_t kBlock = 64;
    for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
      int64_t r1 = std::min(rows, r0 + kBlock);
      std::fill(part.begin(), part.end(), 0.f);
      for (int64_t r = r0; r < r1; ++r) {
        const float* row = z + r * rs + c0 * cs;
        if (cs == 1) {
          for (int64_t c = 0; c < w; ++c) part[c] += row[c];
        } else {
          for (int64_t c = 0; c < w; ++c) part[c] += row[c * cs];
        }
      }
      for (int64_t c = 0; c < w; ++c) acc[c] += part[c];
    }
    for (int64_t c = 0; c < w; ++c) out[c0 + c] = static_cast<float>(accumulate ? out[c0 + c] + acc[c] : acc[c]);
  });
}

double cross_entropy_forward(const CrossEntropyArgs& a, float* row_loss, float* lse_out) {
  const int64_t rows = a.n * a.s, C = a.c, S = a.s;
  int workers = std::max(1, std::min<int>(num_threads(), static_cast<int>((rows * C + kGrain - 1) / kGrain)));
  std::vector<double> partial(static_cast<size_t>(workers), 0.0);
  const double eps = a.label_smoothing;
  run_parallel(workers, [&](int w, int ws) {
    int64_t r0 = rows * w / ws, r1 = rows * (w + 1) / ws;
    double total = 0;
    for (int64_t r = r0; r < r1; ++r) {
      int64_t n = r / S, s = r % S;
      const float* x = a.logits + n * C * S + s;  // element c at x[c * S]
      float mx = -INFINITY;
      for (int64_t c = 0; c < C; ++c) mx = std::max(mx, x[c * S]);
      double sum = 0, sum_x = 0;
      for (int64_t c = 0; c < C; ++c) {
        sum += std::exp(static_cast<double>(x[c * S]) - mx);
        sum_x += x[c * S];
      }
      // Every logit -inf: lse is -inf, the row has no valid distribution; keep it NaN-free for ignored rows.
      double lse = (mx == -INFINITY) ? -INFINITY : mx + std::log(sum);
      lse_out[r] = static_cast<float>(lse);
      double loss;
      if (a.index_target) {
        int32_t y = a.index_target[r];
        if (y == a.ignore_index) {
          loss = 0;
        } else {
          loss = (1 - eps) * (lse - x[static_cast<int64_t>(y) * S]);
          if (eps != 0) loss += eps * (lse - sum_x / static_cast<double>(C));
        }
      } else {
        const float* t = a.prob_target + n * C * S + s;
        loss = 0;
        for (int64_t c = 0; c < C; ++c) {
          double tc = (1 - eps) * t[c * S] + eps / static_cast<double>(C);
          if (tc != 0) loss += tc * (lse - x[c * S]);
        }
      }
      if (row_loss) row_loss[r] = static_cast<float>(loss);
      total += loss;
    }
    partial[static_cast<size_t>(w)] = total;
  });
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

void cross_entropy_backward(const CrossEntropyArgs& a, const float* lse, const float* row_scale, double scale,
                            float* grad) {
  const int64_t rows = a.n * a.s, C = a.c, S = a.s;
  const double eps = a.label_smoothing;
  const float off = static_cast<float>(eps / static_cast<double>(C));
  parallel_for(rows, rows_grain(C), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t n = r / S, s = r % S;
      const float* x = a.logits + n * C * S + s;
      float* g = grad + n * C * S + s;
      float k = static_cast<float>(row_scale ? row_scale[r] * scale : scale);
      float l = lse[r];
      if (a.index_target) {
        int32_t y = a.index_target[r];
        if (y == a.ignore_index) {
          for (int64_t c = 0; c < C; ++c) g[c * S] = 0.f;
          continue;
        }
        for (int64_t c = 0; c < C; ++c) g[c * S] = k * (std::exp(x[c * S] - l) - off);
        g[static_cast<int64_t>(y) * S] -= k * static_cast<float>(1 - eps);
      } else {
        const float* t = a.prob_target + n * C * S + s;
        double tsum = 0;
        for (int64_t c = 0; c < C; ++c) tsum += (1 - eps) * t[c * S] + eps / static_cast<double>(C);
        float ts = static_cast<float>(tsum);
        for (int64_t c = 0; c < C; ++c) {
          float tc = static_cast<float>((1 - eps) * t[c * S]) + off;
          g[c * S] = k * (std::exp(x[c * S] - l) * ts - tc);
        }
      }
    }
  });
}

namespace {

// Sums over a row in kLanes independent float partial sums (the compiler keeps them in vector
// registers; a single double accumulator was a 4-cycle dependency chain per element and made
// layer norm 3x slower than PyTorch's), combined in double at the end.
constexpr int kLanes = 16;

template <class F>
inline double lane_sum(int64_t d, F term) {
  float part[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= d; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) part[l] += term(i + l);
  }
  double s = 0;
  for (; i < d; ++i) s += term(i);
  for (int l = 0; l < kLanes; ++l) s += part[l];
  return s;
}

}  // namespace

void layer_norm_forward(const float* x, const float* gamma, const float* beta, int64_t rows, int64_t d, double eps,
                        float* y, float* mean, float* rstd) {
  parallel_for(rows, rows_grain(d), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * d;
      const float mf = static_cast<float>(lane_sum(d, [&](int64_t i) { return xr[i]; }) / static_cast<double>(d));
      // Two passes (mean, then the centred squares): no cancellation for rows far from zero.
      const double v = lane_sum(d, [&](int64_t i) { return (xr[i] - mf) * (xr[i] - mf); });
      const float rs = static_cast<float>(1.0 / std::sqrt(v / static_cast<double>(d) + eps));
      mean[r] = mf;
      rstd[r] = rs;
      float* yr = y + r * d;
      if (gamma && beta) {
        for (int64_t i = 0; i < d; ++i) yr[i] = (xr[i] - mf) * rs * gamma[i] + beta[i];
      } else {
        for (int64_t i = 0; i < d; ++i) {
          const float h = (xr[i] - mf) * rs;
          yr[i] = (gamma ? h * gamma[i] : h) + (beta ? beta[i] : 0.f);
        }
      }
    }
  });
}

void layer_norm_backward(const float* dy, const float* x, const float* mean, const float* rstd, const float* gamma,
                         int64_t rows, int64_t d, float* dx, float* dgamma, float* dbeta, bool accumulate) {
  if (dx) {
    parallel_for(rows, rows_grain(d), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* g = dy + r * d;
        const float* xr = x + r * d;
        const float m = mean[r], rs = rstd[r];
        auto gh = [&](int64_t i) { return gamma ? g[i] * gamma[i] : g[i]; };
        // The means of dxhat and of dxhat * xhat.
        const float ma = static_cast<float>(lane_sum(d, gh) / static_cast<double>(d));
        const float mb = static_cast<float>(lane_sum(d, [&](int64_t i) { return gh(i) * ((xr[i] - m) * rs); }) /
                                            static_cast<double>(d));
        float* o = dx + r * d;
        for (int64_t i = 0; i < d; ++i) o[i] = rs * (gh(i) - ma - (xr[i] - m) * rs * mb);
      }
    });
  }
  if (dgamma || dbeta) {
    // Columns split among workers; rows summed in float over blocks of 64 (vectorisable across
    // columns), blocks merged in double.
    int64_t grain = std::max<int64_t>(16, kGrain / std::max<int64_t>(rows, 1));
    parallel_for(d, grain, [&](int64_t c0, int64_t c1) {
      const int64_t w = c1 - c0;
      std::vector<double> sg(static_cast<size_t>(w), 0.0), sb(static_cast<size_t>(w), 0.0);
      std::vector<float> pg(static_cast<size_t>(w)), pb(static_cast<size_t>(w));
      constexpr int64_t kBlock = 64;
      for (int64_t b0 = 0; b0 < rows; b0 += kBlock) {
        std::fill(pg.begin(), pg.end(), 0.f);
        std::fill(pb.begin(), pb.end(), 0.f);
        for (int64_t r = b0; r < std::min(rows, b0 + kBlock); ++r) {
          const float* g = dy + r * d + c0;
          const float* xr = x + r * d + c0;
          const float m = mean[r], rs = rstd[r];
          for (int64_t i = 0; i < w; ++i) {
            pg[i] += g[i] * ((xr[i] - m) * rs);
            pb[i] += g[i];
          }
        }
        for (int64_t i = 0; i < w; ++i) {
          sg[i] += pg[i];
          sb[i] += pb[i];
        }
      }
      for (int64_t i = 0; i < w; ++i) {
        if (dgamma) dgamma[c0 + i] = static_cast<float>(accumulate ? dgamma[c0 + i] + sg[i] : sg[i]);
        if (dbeta) dbeta[c0 + i] = static_cast<float>(accumulate ? dbeta[c0 + i] + sb[i] : sb[i]);
      }
    });
  }
}

}  // namespace joule::kernels
