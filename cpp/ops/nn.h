// Fused neural-network ops: each saves passes over memory that the composed form would make.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/gemm/gemm.h"

namespace joule::ops {

// The fp32 GEMM on `device` (its operands' device): CUDA at matmul_precision(), or the CPU GEMM.
void sgemm_on(Device device, const gemm::Sgemm& g);

// y = act(x @ w^T + bias): x [..., in], w [out, in] (PyTorch's layout), bias [out] or none.
// One GEMM with the bias and activation in its epilogue.
Tensor linear(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, gemm::Activation activation);

// In place, like BLAS sgemm and torch.addmm_: c = act(alpha * a @ b + beta * c + bias), for 2-D
// float32 views of any strides (transposes included). beta = 0 never reads c.
void addmm_(const Tensor& c, const Tensor& a, const Tensor& b, double alpha, double beta,
            const std::optional<Tensor>& bias, gemm::Activation activation);

// Training form of linear: returns {y, saved}, where saved is what the backward needs for the
// activation's derivative: nothing for None, y itself for Relu, the pre-activation for Gelu.
std::vector<Tensor> linear_train(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias,
                                 gemm::Activation activation);

// Gradients of linear: dz = dy * act'(saved); dx = dz @ w, dw = dz^T @ x, db = column sums of dz,
// each by GEMM on strides (no transposed copies). dw_into / db_into, when given, receive the
// gradient, added to what they hold (GEMM beta = 1) when accumulate_dw / accumulate_db, else
// written over it; dw / db are then not returned.
struct LinearGrads {
  std::optional<Tensor> dx, dw, db;
};
LinearGrads linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const std::optional<Tensor>& saved,
                            gemm::Activation activation, bool need_dx, bool need_dw, bool need_db,
                            const std::optional<Tensor>& dw_into, const std::optional<Tensor>& db_into,
                            bool accumulate_dw, bool accumulate_db);

enum class Reduction { None, Mean, Sum };
Reduction parse_reduction(const std::string& name);

// Fused cross entropy: logits [N, C, d...]; target int32 [N, d...] (class indices, ignore_index
// skipped) or float32 [N, C, d...] (probabilities). Returns {loss, lse} where loss is [] or
// [N, d...] (Reduction::None) and lse [N, d...] is kept for the backward.
std::vector<Tensor> cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing,
                                  int64_t ignore_index, Reduction reduction);
Tensor cross_entropy_backward(const Tensor& grad, const Tensor& logits, const Tensor& target, const Tensor& lse,
                              double label_smoothing, int64_t ignore_index, Reduction reduction);

// Layer norm over the last dimension: returns {y, mean, rstd}.
std::vector<Tensor> layer_norm(const Tensor& x, const std::optional<Tensor>& gamma, const std::optional<Tensor>& beta,
                               double eps);
// Returns {dx, dgamma, dbeta} (dgamma/dbeta undefined tensors when not wanted: check numel via has flags).
struct LayerNormGrads {
  std::optional<Tensor> dx, dgamma, dbeta;
};
LayerNormGrads layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                   const std::optional<Tensor>& gamma, bool need_dx, bool need_affine);

// ---- fused optimizer steps over parameter lists (in place; see kernels/nn.h) ----
void sgd_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& bufs,
              const std::vector<uint8_t>& init, double lr, double momentum, double dampening, double weight_decay,
              bool nesterov, bool maximize);
void adam_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& exp_avg,
               const std::vector<Tensor>& exp_avg_sq, const std::vector<Tensor>& max_exp_avg_sq,
               const std::vector<double>& steps, double lr, double beta1, double beta2, double eps,
               double weight_decay, bool decoupled, bool amsgrad, bool maximize);
double total_norm(const std::vector<Tensor>& tensors, double p);
void scale_inplace(const std::vector<Tensor>& tensors, double factor);

}  // namespace joule::ops
