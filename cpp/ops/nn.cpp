#include "ops/nn.h"

#include <tuple>

#include "kernels/nn.h"

#include "ops/ops.h"
#include "ops/util.h"

namespace joule::ops {

Tensor linear(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, gemm::Activation activation) {
  require_same_device(x, w, "linear");
  JOULE_CHECK(x.dtype == DType::Float32 && w.dtype == DType::Float32, Code::Dtype, "linear: expected float32 input and weight, got ",
        dtype_name(x.dtype), " and ", dtype_name(w.dtype));
  JOULE_CHECK(x.dim() >= 1 && w.dim() == 2, Code::ShapeMismatch, "linear: expected input [..., in] and weight [out, in], got ",
        shape_str(x.shape), " and ", shape_str(w.shape));
  int64_t in = w.shape[1], out_features = w.shape[0];
  JOULE_CHECK(x.shape.back() == in, Code::ShapeMismatch, "linear: input has ", x.shape.back(), " features, weight expects ", in);
  Tensor b;
  if (bias) {
    require_same_device(x, *bias, "linear");
    JOULE_CHECK(bias->dtype == DType::Float32 && bias->dim() == 1 && bias->shape[0] == out_features, Code::ShapeMismatch,
          "linear: expected a float32 bias of shape [", out_features, "], got ", shape_str(bias->shape));
    b = contiguous(*bias);
  }
  Tensor x2 = reshape(x, {-1, in});
  int64_t rows = x2.shape[0];
  Shape out_shape(x.shape.begin(), x.shape.end() - 1);
  out_shape.push_back(out_features);
  Tensor y = empty(out_shape, DType::Float32, x.device());
  gemm::Sgemm g = sgemm_of(x2, transpose(w, 0, 1), view(y, {rows, out_features}));
  g.bias = bias ? b.data<float>() : nullptr;
  g.activation = activation;
  sgemm_on(x.device(), g);
  return y;
}

}  // namespace joule::ops

// ---- training forms and gradients ----

namespace joule::ops {
namespace {

// The 2-D [rows, cols] view (or copy) of t [..., cols].
Tensor rows_of(const Tensor& t, int64_t cols) { return reshape(t, {-1, cols}); }

// float32 and on the device of `like` (the op's main operand; CPU or CUDA).
void require_f32_on(const Tensor& t, const Tensor& like, const char* op, const char* what) {
  require_same_device(like, t, op);
  require_dtype(t, DType::Float32, op, what);
}

}  // namespace

std::vector<Tensor> linear_train(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias,
                                 gemm::Activation activation) {
  if (activation != gemm::Activation::Gelu) return {linear(x, w, bias, activation)};
  // GELU's derivative needs the pre-activation, which the epilogue does not keep.
  Tensor z = linear(x, w, bias, gemm::Activation::None);
  return {unary(UnaryOp::Gelu, z), z};
}

LinearGrads linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const std::optional<Tensor>& saved,
                            gemm::Activation activation, bool need_dx, bool need_dw, bool need_db,
                            const std::optional<Tensor>& dw_into, const std::optional<Tensor>& db_into,
                            bool accumulate_dw, bool accumulate_db) {
  const char* op = "linear backward";
  const Device device = dy.device();
  // Every operand float32 on the gradient's device (CPU or CUDA).
  auto require_f32_here = [&](const Tensor& t, const char* what) { require_f32_on(t, dy, op, what); };
  require_f32_here(dy, "the gradient");
  require_f32_here(x, "the input");
  require_f32_here(w, "the weight");
  JOULE_CHECK(w.dim() == 2 && x.dim() >= 1, Code::ShapeMismatch, op, ": expected weight [out, in] and input [..., in]");
  const int64_t in = w.shape[1], out = w.shape[0];
  JOULE_CHECK(x.shape.back() == in, Code::ShapeMismatch, op, ": input has ", x.shape.back(), " features, weight expects ", in);
  Shape y_shape(x.shape.begin(), x.shape.end() - 1);
  y_shape.push_back(out);
  JOULE_CHECK(dy.shape == y_shape, Code::ShapeMismatch, op, ": expected a gradient of shape ", shape_str(y_shape), ", got ",
        shape_str(dy.shape));
  if (dw_into) {
    require_f32_here(*dw_into, "the weight gradient");
    JOULE_CHECK(dw_into->shape == w.shape, Code::ShapeMismatch, op, ": the weight gradient has shape ",
          shape_str(dw_into->shape), ", expected ", shape_str(w.shape));
  }
  if (db_into) {
    require_f32_here(*db_into, "the bias gradient");
    JOULE_CHECK(db_into->shape == Shape{out}, Code::ShapeMismatch, op, ": the bias gradient has shape ",
          shape_str(db_into->shape), ", expected [", out, "]");
  }
  Tensor dy2 = rows_of(dy, out);
  const int64_t rows = dy2.shape[0];
  Tensor dz = dy2;
  if (activation != gemm::Activation::None) {
    JOULE_CHECK(saved.has_value(), Code::InvalidArgument, op, ": the activation's saved tensor is missing");
    require_f32_here(*saved, "the saved activation");
    JOULE_CHECK(saved->shape == y_shape, Code::ShapeMismatch, op, ": the saved activation has shape ",
          shape_str(saved->shape), ", expected ", shape_str(y_shape));
    Tensor s = contiguous(rows_of(*saved, out));
    dz = empty({rows, out}, DType::Float32, dy.device());
    if (device.is_cuda()) {
      cuda::activation_backward(activation, dy2.data<float>(), dy2.strides[0], dy2.strides[1], s.data<float>(),
                                dz.data<float>(), rows, out, device.index);
    } else {
      kernels::activation_backward(activation, dy2.data<float>(), dy2.strides[0], dy2.strides[1], s.data<float>(),
                                   dz.data<float>(), rows, out);
    }
  }
  LinearGrads r;
  if (need_dx) {
    Tensor dx = empty({rows, in}, DType::Float32, dy.device());
    gemm::Sgemm g = sgemm_of(dz, w, dx);
    if (rows > 0 && in > 0) {
      if (out == 0) fill(dx, 0);
      else sgemm_on(device, g);
    }
    r.dx = reshape(dx, x.shape);
  }
  if (need_dw || dw_into) {
    Tensor x2 = rows_of(x, in);
    Tensor dw = dw_into ? *dw_into : empty(w.shape, DType::Float32, dy.device());
    gemm::Sgemm g = sgemm_of(transpose(dz, 0, 1), x2, dw);
    const bool add = dw_into && accumulate_dw;
    g.beta = add ? 1.f : 0.f;
    if (out > 0 && in > 0) {
      if (rows == 0) {
        if (!add) fill(dw, 0);
      } else {
        sgemm_on(device, g);
      }
    }
    if (!dw_into) r.dw = dw;
  }
  if (need_db || db_into) {
    Tensor db = db_into ? contiguous(*db_into) : empty({out}, DType::Float32, dy.device());
    JOULE_CHECK(!db_into || db.storage == db_into->storage, Code::InvalidArgument, op, ": the bias gradient must be contiguous");
    const bool add = db_into && accumulate_db;
    if (device.is_cuda()) {
      cuda::column_sums(dz.data<float>(), dz.strides[0], dz.strides[1], rows, out, db.data<float>(), add, device.index);
    } else {
      kernels::column_sums(dz.data<float>(), dz.strides[0], dz.strides[1], rows, out, db.data<float>(), add);
    }
    if (!db_into) r.db = db;
  }
  return r;
}

Reduction parse_reduction(const std::string& name) {
  if (name == "none") return Reduction::None;
  if (name == "mean") return Reduction::Mean;
  if (name == "sum") return Reduction::Sum;
  fail(Code::InvalidArgument, "expected a reduction 'none', 'mean' or 'sum', got '", name, "'");
}

namespace {

struct CeSetup {
  kernels::CrossEntropyArgs args;
  Tensor logits, target;
  Shape row_shape;  // [N, d...]
};

CeSetup ce_setup(const Tensor& logits_in, const Tensor& target_in, double label_smoothing, int64_t ignore_index,
                 const char* op) {
  require_f32_on(logits_in, logits_in, op, "the logits");
  require_same_device(logits_in, target_in, op);
  JOULE_CHECK(logits_in.dim() >= 2, Code::ShapeMismatch, op, ": expected logits [N, C] or [N, C, d...], got ",
        shape_str(logits_in.shape));
  JOULE_CHECK(label_smoothing >= 0 && label_smoothing <= 1, Code::InvalidArgument, op,
        ": expected labelSmoothing in [0, 1], got ", label_smoothing);
  CeSetup s;
  s.logits = contiguous(logits_in);
  const Shape& ls = s.logits.shape;
  int64_t n = ls[0], c = ls[1], sp = 1;
  for (size_t d = 2; d < ls.size(); ++d) sp *= ls[d];
  s.row_shape = {n};
  for (size_t d = 2; d < ls.size(); ++d) s.row_shape.push_back(ls[d]);
  s.args.logits = s.logits.data<float>();
  s.args.n = n;
  s.args.c = c;
  s.args.s = sp;
  s.args.label_smoothing = label_smoothing;
  s.args.ignore_index = ignore_index;
  if (target_in.dtype == DType::Int32) {
    JOULE_CHECK(target_in.shape == s.row_shape, Code::ShapeMismatch, op, ": expected class indices of shape ",
          shape_str(s.row_shape), " for logits ", shape_str(ls), ", got ", shape_str(target_in.shape));
    s.target = contiguous(target_in);
    const int32_t* t = s.target.data<int32_t>();
    if (s.target.device().is_cuda()) {
      int32_t bad = 0;
      int64_t at = cuda::first_invalid_target(s.target, c, ignore_index, &bad);
      JOULE_CHECK(at < 0, Code::InvalidArgument, op, ": target ", bad, " at position ", at, " is out of range for ", c,
            " classes");
    } else {
      for (int64_t i = 0, m = n * sp; i < m; ++i) {
        JOULE_CHECK(t[i] == ignore_index || (t[i] >= 0 && t[i] < c), Code::InvalidArgument, op, ": target ", t[i],
              " at position ", i, " is out of range for ", c, " classes");
      }
    }
    s.args.index_target = t;
  } else if (target_in.dtype == DType::Float32) {
    JOULE_CHECK(target_in.shape == ls, Code::ShapeMismatch, op, ": expected probability targets of the logits' shape ",
          shape_str(ls), ", got ", shape_str(target_in.shape));
    s.target = contiguous(target_in);
    s.args.prob_target = s.target.data<float>();
  } else {
    fail(Code::Dtype, op, ": expected an int32 target (class indices) or a float32 target (probabilities), got ",
         dtype_name(target_in.dtype));
  }
  return s;
}

// The divisor of 'mean': the rows not ignored (index targets) or all rows (probabilities).
double ce_count(const CeSetup& s) {
  int64_t rows = s.args.n * s.args.s;
  if (!s.args.index_target) return static_cast<double>(rows);
  int64_t k = 0;
  for (int64_t i = 0; i < rows; ++i) k += s.args.index_target[i] != s.args.ignore_index;
  return static_cast<double>(k);
}

}  // namespace

std::vector<Tensor> cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing,
                                  int64_t ignore_index, Reduction reduction) {
  CeSetup s = ce_setup(logits, target, label_smoothing, ignore_index, "crossEntropy");
  Tensor lse = empty(s.row_shape, DType::Float32, logits.device());
  if (logits.device().is_cuda()) {  // the total and its mean stay on the device (no synchronization)
    const int device = logits.device().index;
    if (reduction == Reduction::None) {
      Tensor loss = empty(s.row_shape, DType::Float32, logits.device());
      cuda::cross_entropy_forward(s.args, device, loss.data<float>(), lse.data<float>(), nullptr, false);
      return {loss, lse};
    }
    Tensor loss = empty({}, DType::Float32, logits.device());
    cuda::cross_entropy_forward(s.args, device, nullptr, lse.data<float>(), loss.data<float>(),
                                reduction == Reduction::Mean);
    return {loss, lse};
  }
  if (reduction == Reduction::None) {
    Tensor loss = empty(s.row_shape, DType::Float32, logits.device());
    kernels::cross_entropy_forward(s.args, loss.data<float>(), lse.data<float>());
    return {loss, lse};
  }
  double total = kernels::cross_entropy_forward(s.args, nullptr, lse.data<float>());
  if (reduction == Reduction::Mean) total /= ce_count(s);  // 0/0 = NaN when every row is ignored, as in PyTorch
  Tensor loss = empty({}, DType::Float32, logits.device());
  *loss.data<float>() = static_cast<float>(total);
  return {loss, lse};
}

Tensor cross_entropy_backward(const Tensor& grad, const Tensor& logits, const Tensor& target, const Tensor& lse,
                              double label_smoothing, int64_t ignore_index, Reduction reduction) {
  const char* op = "crossEntropy backward";
  CeSetup s = ce_setup(logits, target, label_smoothing, ignore_index, op);
  require_f32_on(grad, logits, op, "the gradient");
  require_f32_on(lse, logits, op, "the saved log-sum-exp");
  JOULE_CHECK(lse.shape == s.row_shape && lse.is_contiguous(), Code::ShapeMismatch, op, ": the saved log-sum-exp has shape ",
        shape_str(lse.shape));
  Tensor out = empty(s.logits.shape, DType::Float32, logits.device());
  if (logits.device().is_cuda()) {
    const int device = logits.device().index;
    if (reduction == Reduction::None) {
      JOULE_CHECK(grad.shape == s.row_shape, Code::ShapeMismatch, op, ": expected a gradient of shape ",
            shape_str(s.row_shape), ", got ", shape_str(grad.shape));
      Tensor g = contiguous(grad);
      cuda::cross_entropy_backward(s.args, device, lse.data<float>(), g.data<float>(), nullptr, false, out.data<float>());
    } else {
      JOULE_CHECK(grad.numel() == 1, Code::ShapeMismatch, op, ": expected a scalar gradient, got ", shape_str(grad.shape));
      Tensor g = contiguous(grad);
      cuda::cross_entropy_backward(s.args, device, lse.data<float>(), nullptr, g.data<float>(),
                                   reduction == Reduction::Mean, out.data<float>());
    }
    return out;
  }
  if (reduction == Reduction::None) {
    JOULE_CHECK(grad.shape == s.row_shape, Code::ShapeMismatch, op, ": expected a gradient of shape ", shape_str(s.row_shape),
          ", got ", shape_str(grad.shape));
    Tensor g = contiguous(grad);
    kernels::cross_entropy_backward(s.args, lse.data<float>(), g.data<float>(), 1.0, out.data<float>());
  } else {
    JOULE_CHECK(grad.numel() == 1, Code::ShapeMismatch, op, ": expected a scalar gradient, got ", shape_str(grad.shape));
    double g = *contiguous(grad).data<float>();
    if (reduction == Reduction::Mean) g /= ce_count(s);
    kernels::cross_entropy_backward(s.args, lse.data<float>(), nullptr, g, out.data<float>());
  }
  return out;
}

std::vector<Tensor> layer_norm(const Tensor& x_in, const std::optional<Tensor>& gamma, const std::optional<Tensor>& beta,
                               double eps) {
  const char* op = "layerNorm";
  require_f32_on(x_in, x_in, op, "the input");
  JOULE_CHECK(x_in.dim() >= 1, Code::ShapeMismatch, op, ": expected at least one dimension");
  JOULE_CHECK(eps >= 0, Code::InvalidArgument, op, ": expected eps >= 0, got ", eps);
  const int64_t d = x_in.shape.back();
  Tensor g, b;
  for (auto [t, name, out] : {std::tuple{&gamma, "weight", &g}, std::tuple{&beta, "bias", &b}}) {
    if (!*t) continue;
    require_f32_on(**t, x_in, op, name);
    JOULE_CHECK((*t)->numel() == d, Code::ShapeMismatch, op, ": expected the ", name, " to have ", d, " elements, got ",
          shape_str((*t)->shape));
    *out = contiguous(**t);
  }
  Tensor x = contiguous(x_in);
  const int64_t rows = d == 0 ? 0 : x.numel() / d;
  Shape row_shape(x.shape.begin(), x.shape.end() - 1);
  Tensor y = empty(x.shape, DType::Float32, x.device());
  Tensor mean = empty(row_shape, DType::Float32, x.device());
  Tensor rstd = empty(row_shape, DType::Float32, x.device());
  if (x.device().is_cuda()) {
    cuda::layer_norm_forward(x.device().index, x.data<float>(), gamma ? g.data<float>() : nullptr,
                             beta ? b.data<float>() : nullptr, rows, d, eps, y.data<float>(), mean.data<float>(),
                             rstd.data<float>());
  } else {
    kernels::layer_norm_forward(x.data<float>(), gamma ? g.data<float>() : nullptr, beta ? b.data<float>() : nullptr,
                                rows, d, eps, y.data<float>(), mean.data<float>(), rstd.data<float>());
  }
  return {y, mean, rstd};
}

LayerNormGrads layer_norm_backward(const Tensor& dy_in, const Tensor& x_in, const Tensor& mean, const Tensor& rstd,
                                   const std::optional<Tensor>& gamma, bool need_dx, bool need_affine) {
  const char* op = "layerNorm backward";
  require_f32_on(dy_in, x_in, op, "the gradient");
  require_f32_on(x_in, x_in, op, "the input");
  require_same_device(x_in, mean, op);
  require_same_device(x_in, rstd, op);
  if (gamma) require_same_device(x_in, *gamma, op);
  JOULE_CHECK(dy_in.shape == x_in.shape, Code::ShapeMismatch, op, ": the gradient's shape ", shape_str(dy_in.shape),
        " differs from the input's ", shape_str(x_in.shape));
  const int64_t d = x_in.shape.back();
  const int64_t rows = d == 0 ? 0 : x_in.numel() / d;
  JOULE_CHECK(mean.numel() == rows && rstd.numel() == rows && mean.is_contiguous() && rstd.is_contiguous(),
        Code::ShapeMismatch, op, ": the saved statistics do not match the input");
  Tensor g;
  if (gamma) {
    JOULE_CHECK(gamma->numel() == d, Code::ShapeMismatch, op, ": the weight has the wrong size");
    g = contiguous(*gamma);
  }
  Tensor dy = contiguous(dy_in), x = contiguous(x_in);
  LayerNormGrads r;
  float *dx = nullptr, *dg = nullptr, *db = nullptr;
  if (need_dx) {
    r.dx = empty(x.shape, DType::Float32, x.device());
    dx = r.dx->data<float>();
  }
  if (need_affine) {
    r.dgamma = empty({d}, DType::Float32, x.device());
    r.dbeta = empty({d}, DType::Float32, x.device());
    dg = r.dgamma->data<float>();
    db = r.dbeta->data<float>();
  }
  if (x.device().is_cuda()) {
    cuda::layer_norm_backward(x.device().index, dy.data<float>(), x.data<float>(), mean.data<float>(),
                              rstd.data<float>(), gamma ? g.data<float>() : nullptr, rows, d, dx, dg, db);
  } else {
    kernels::layer_norm_backward(dy.data<float>(), x.data<float>(), mean.data<float>(), rstd.data<float>(),
                                 gamma ? g.data<float>() : nullptr, rows, d, dx, dg, db, false);
  }
  return r;
}

// ---- optimizers ----

namespace {

void check_param_list(const std::vector<Tensor>& params, const std::vector<Tensor>& other, const char* op,
                      const char* what, bool allow_empty) {
  if (allow_empty && other.empty()) return;
  JOULE_CHECK(other.size() == params.size(), Code::InvalidArgument, op, ": expected ", params.size(), " ", what, ", got ",
        other.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& t = other[i];
    require_same_device(params[0], t, op);
    JOULE_CHECK(t.dtype == DType::Float32, Code::Dtype, op, ": ", what, " ", i, " is ", dtype_name(t.dtype), ", expected float32");
    JOULE_CHECK(t.numel() == params[i].numel(), Code::ShapeMismatch, op, ": ", what, " ", i, " has shape ", shape_str(t.shape),
          ", its parameter ", shape_str(params[i].shape));
    JOULE_CHECK(t.is_contiguous(), Code::InvalidArgument, op, ": ", what, " ", i, " is not contiguous");
  }
}

}  // namespace

void sgd_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& bufs,
              const std::vector<uint8_t>& init, double lr, double momentum, double dampening, double weight_decay,
              bool nesterov, bool maximize) {
  const char* op = "sgdStep";
  check_param_list(params, params, op, "parameters", false);
  check_param_list(params, grads, op, "gradients", false);
  check_param_list(params, bufs, op, "momentum buffers", momentum == 0);
  JOULE_CHECK(bufs.empty() || init.size() == params.size(), Code::InvalidArgument, op, ": expected ", params.size(),
        " initialised flags, got ", init.size());
  JOULE_CHECK(momentum != 0 || bufs.empty(), Code::InvalidArgument, op, ": momentum buffers given with momentum 0");
  kernels::SgdHyper h;
  h.lr = lr;
  h.momentum = momentum;
  h.dampening = dampening;
  h.weight_decay = weight_decay;
  h.nesterov = nesterov;
  h.maximize = maximize;
  if (!params.empty() && params[0].device().is_cuda()) cuda::sgd_step(params, grads, bufs, init, h);
  else kernels::sgd_step(params, grads, bufs, init, h);
}

void adam_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& exp_avg,
               const std::vector<Tensor>& exp_avg_sq, const std::vector<Tensor>& max_exp_avg_sq,
               const std::vector<double>& steps, double lr, double beta1, double beta2, double eps,
               double weight_decay, bool decoupled, bool amsgrad, bool maximize) {
  const char* op = "adamStep";
  check_param_list(params, params, op, "parameters", false);
  check_param_list(params, grads, op, "gradients", false);
  check_param_list(params, exp_avg, op, "first moments", false);
  check_param_list(params, exp_avg_sq, op, "second moments", false);
  check_param_list(params, max_exp_avg_sq, op, "max second moments", !amsgrad);
  JOULE_CHECK(amsgrad == !max_exp_avg_sq.empty() || params.empty(), Code::InvalidArgument, op,
        ": max second moments are needed exactly when amsgrad is on");
  JOULE_CHECK(steps.size() == params.size(), Code::InvalidArgument, op, ": expected ", params.size(), " step counts, got ",
        steps.size());
  for (double s : steps) JOULE_CHECK(s >= 1, Code::InvalidArgument, op, ": step counts start at 1, got ", s);
  kernels::AdamHyper h;
  h.lr = lr;
  h.beta1 = beta1;
  h.beta2 = beta2;
  h.eps = eps;
  h.weight_decay = weight_decay;
  h.decoupled = decoupled;
  h.amsgrad = amsgrad;
  h.maximize = maximize;
  if (!params.empty() && params[0].device().is_cuda()) {
    cuda::adam_step(params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq, steps, h);
  } else {
    kernels::adam_step(params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq, steps, h);
  }
}

double total_norm(const std::vector<Tensor>& tensors, double p) {
  JOULE_CHECK(p > 0, Code::InvalidArgument, "gradNorm: expected a norm type > 0 (or Infinity), got ", p);
  check_param_list(tensors, tensors, "gradNorm", "tensors", false);
  if (!tensors.empty() && tensors[0].device().is_cuda()) return cuda::total_norm(tensors, p);
  return kernels::total_norm(tensors, p);
}

void scale_inplace(const std::vector<Tensor>& tensors, double factor) {
  check_param_list(tensors, tensors, "scaleInplace", "tensors", false);
  if (!tensors.empty() && tensors[0].device().is_cuda()) cuda::scale_inplace(tensors, factor);
  else kernels::scale_inplace(tensors, factor);
}

void addmm_(const Tensor& c, const Tensor& a, const Tensor& b, double alpha, double beta,
            const std::optional<Tensor>& bias, gemm::Activation activation) {
  require_same_device(c, a, "addmm_");
  require_same_device(c, b, "addmm_");
  JOULE_CHECK(a.dtype == DType::Float32 && b.dtype == DType::Float32 && c.dtype == DType::Float32, Code::Dtype,
              "addmm_: expected float32 tensors, got ", dtype_name(c.dtype), ", ", dtype_name(a.dtype), " and ",
              dtype_name(b.dtype));
  JOULE_CHECK(a.dim() == 2 && b.dim() == 2 && c.dim() == 2 && a.shape[1] == b.shape[0] && c.shape[0] == a.shape[0] &&
                  c.shape[1] == b.shape[1],
              Code::ShapeMismatch, "addmm_: expected c [m, n], a [m, k], b [k, n], got ", shape_str(c.shape), ", ",
              shape_str(a.shape), " and ", shape_str(b.shape));
  JOULE_CHECK(c.numel() <= 1 || (c.strides[0] != 0 && c.strides[1] != 0), Code::InvalidArgument,
              "addmm_: cannot write into an expanded (broadcast) view");
  Tensor bc;
  if (bias) {
    require_same_device(c, *bias, "addmm_");
    JOULE_CHECK(bias->dtype == DType::Float32 && bias->dim() == 1 && bias->shape[0] == c.shape[1], Code::ShapeMismatch,
                "addmm_: expected a float32 bias of shape [", c.shape[1], "], got ", shape_str(bias->shape));
    bc = contiguous(*bias);
  }
  gemm::Sgemm g = sgemm_of(a, b, c);
  g.alpha = static_cast<float>(alpha);
  g.beta = static_cast<float>(beta);
  g.bias = bias ? bc.data<float>() : nullptr;
  g.activation = activation;
  sgemm_on(c.device(), g);
}

}  // namespace joule::ops
