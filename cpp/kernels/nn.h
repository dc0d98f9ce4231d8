// CPU kernels of the fused neural-network ops (nn.cpp) and of the fused optimizer steps
// (optim.cpp). The ops layer (cpp/ops/nn.cpp) has checked every shape, dtype and device.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "kernels/gemm/gemm.h"

namespace joule::kernels {

// ---- linear backward helpers ----
// dz[r, c] = dy[r, c] * act'(saved[r, c]) (relu: saved is the output, gelu: the pre-activation).
// dy may be strided; dz and saved are contiguous [rows, cols].
void activation_backward(gemm::Activation act, const float* dy, int64_t dy_rs, int64_t dy_cs, const float* saved,
                         float* dz, int64_t rows, int64_t cols);
// out[c] (+)= sum_r z[r * rs + c * cs].
void column_sums(const float* z, int64_t rs, int64_t cs, int64_t rows, int64_t cols, float* out, bool accumulate);

// ---- cross entropy over logits [n, c, s] (contiguous) ----
struct CrossEntropyArgs {
  const float* logits = nullptr;
  int64_t n = 0, c = 0, s = 1;
  const int32_t* index_target = nullptr;  // [n, s], or null
  const float* prob_target = nullptr;     // [n, c, s], or null
  double label_smoothing = 0;
  int64_t ignore_index = -100;
};
// Per row (n, s): lse[row] and the loss; returns the sum of the row losses (double).
double cross_entropy_forward(const CrossEntropyArgs& a, float* row_loss, float* lse);
// grad_logits = scale_row * (softmax - target'), scale_row = row_scale ? row_scale[row] * scale : scale.
void cross_entropy_backward(const CrossEntropyArgs& a, const float* lse, const float* row_scale, double scale,
                            float* grad);

// ---- layer norm over the last dim d of x [rows, d] (contiguous) ----
void layer_norm_forward(const float* x, const float* gamma, const float* beta, int64_t rows, int64_t d, double eps,
                        float* y, float* mean, float* rstd);
// dx may be null; dgamma/dbeta may be null (accumulate = add to them).
void layer_norm_backward(const float* dy, const float* x, const float* mean, const float* rstd, const float* gamma,
                         int64_t rows, int64_t d, float* dx, float* dgamma, float* dbeta, bool accumulate);

// ---- optimizers: every list is one entry per parameter, all contiguous float32 ----
struct SgdHyper {
  double lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false, maximize = false;
};
// bufs is empty when momentum == 0; init[i] = 1 once bufs[i] holds a momentum value.
void sgd_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& bufs,
              const std::vector<uint8_t>& init, const SgdHyper& h);

struct AdamHyper {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool decoupled = false, amsgrad = false, maximize = false;
};
// steps[i]: the step number (1-based, already incremented) of parameter i, for bias correction.
void adam_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& exp_avg,
               const std::vector<Tensor>& exp_avg_sq, const std::vector<Tensor>& max_exp_avg_sq,
               const std::vector<double>& steps, const AdamHyper& h);

// The p-norm of all the tensors' elements together (p = +inf: the largest magnitude).
double total_norm(const std::vector<Tensor>& ts, double p);
void scale_inplace(const std::vector<Tensor>& ts, double factor);

}  // namespace joule::kernels
