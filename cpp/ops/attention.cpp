#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cuda/backend.h"
#include "kernels/attention.h"
#include "ops/ops.h"
#include "ops/util.h"

namespace joule::ops {
namespace {

// A view with a unit-stride last dim: t itself, or a contiguous copy.
Tensor unit_last(const Tensor& t) {
  if (t.dim() == 4 && (t.strides[3] == 1 || t.shape[3] <= 1)) return t;
  return contiguous(t);
}

void strides3(const Tensor& t, int64_t s[3]) {
  s[0] = t.strides[0];
  s[1] = t.strides[1];
  s[2] = t.strides[2];
}

struct Checked {
  Tensor q, k, v;
  kernels::AttentionArgs args;
};

Checked check_qkv(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double scale, const char* op) {
  require_same_device(q, k, op);
  require_same_device(q, v, op);
  for (const Tensor* t : {&q, &k, &v}) require_dtype(*t, DType::Float32, op, "q, k and v");
  JOULE_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, Code::ShapeMismatch, op,
        ": expected q [B, H, Tq, D], k and v [B, H, Tk, D], got ", shape_str(q.shape), ", ", shape_str(k.shape), " and ",
        shape_str(v.shape));
  JOULE_CHECK(k.shape == v.shape && q.shape[0] == k.shape[0] && q.shape[1] == k.shape[1] && q.shape[3] == k.shape[3],
        Code::ShapeMismatch, op, ": expected q [B, H, Tq, D], k and v [B, H, Tk, D], got ", shape_str(q.shape), ", ",
        shape_str(k.shape), " and ", shape_str(v.shape));
  const int64_t D = q.shape[3];
  JOULE_CHECK(D >= 1 && D <= kernels::kAttentionMaxHeadDim, Code::InvalidArgument, op, ": the head size D must be 1..",
        kernels::kAttentionMaxHeadDim, ", got ", D);
  JOULE_CHECK(std::isnan(scale) || std::isfinite(scale), Code::InvalidArgument, op, ": expected a finite scale, got ", scale);
  Checked c{unit_last(q), unit_last(k), unit_last(v), {}};
  auto& a = c.args;
  a.B = q.shape[0];
  a.H = q.shape[1];
  a.Tq = q.shape[2];
  a.Tk = k.shape[2];
  a.D = D;
  a.q = c.q.data<float>();
  a.k = c.k.data<float>();
  a.v = c.v.data<float>();
  strides3(c.q, a.q_s);
  strides3(c.k, a.k_s);
  strides3(c.v, a.v_s);
  a.causal = causal;
  a.scale = static_cast<float>(std::isnan(scale) ? 1.0 / std::sqrt(static_cast<double>(D)) : scale);
  return c;
}

// Whether attention_qkv_cached can address qkv and the caches directly on the CPU: float32
// throughout, unit-stride rows (the head dim), no storage shared between qkv and a cache (the
// copies below would then have to read their source in full first, as copy_into does) and no
// broadcast cache (copy_into refuses to write one). Anything else takes the general path.
bool cached_cpu_fast(const Tensor& qkv, const Tensor& ck, const Tensor& cv) {
  for (const Tensor* t : {&ck, &cv}) {
    if (!t->device().is_cpu() || t->dtype != DType::Float32 || t->storage == qkv.storage) return false;
    if (t->strides[3] != 1 && t->shape[3] > 1) return false;
    for (int d = 0; d < 3; ++d) {
      if (t->strides[d] == 0 && t->shape[d] > 1) return false;
    }
  }
  return qkv.strides[2] == 1 || qkv.shape[2] <= 1;
}

// The CPU decode step without the general machinery: per call it allocates the output only (the
// view ops, the strided copy_into and the [B, H, T] log-sum-exp tensor each cost allocations and
// more time than the attention itself at T = 1, Tk ~ 100). Same checks, results and caches as the
// general path.
Tensor attention_qkv_cached_cpu(const Tensor& qkv, const Tensor& cache_k, const Tensor& cache_v, int64_t length,
                                int64_t B, int64_t T, int64_t H, int64_t D, bool causal, double scale,
                                const char* op) {
  JOULE_CHECK(D >= 1 && D <= kernels::kAttentionMaxHeadDim, Code::InvalidArgument, op, ": the head size D must be 1..",
        kernels::kAttentionMaxHeadDim, ", got ", D);
  JOULE_CHECK(std::isnan(scale) || std::isfinite(scale), Code::InvalidArgument, op, ": expected a finite scale, got ", scale);
  const int64_t C = H * D;
  Tensor out = empty({B, T, C}, DType::Float32, qkv.device());
  if (out.numel() == 0) return out;
  const float* x = qkv.data<float>();
  const int64_t xs0 = qkv.strides[0], xs1 = qkv.strides[1];
  float* kc = cache_k.data<float>();
  float* vc = cache_v.data<float>();
  // The new keys and values: one D-float row per (b, t, h), qkv's [3, H, D] slots 1 and 2.
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      const float* row = x + b * xs0 + t * xs1;
      for (int64_t h = 0; h < H; ++h) {
        std::memcpy(kc + b * cache_k.strides[0] + h * cache_k.strides[1] + (length + t) * cache_k.strides[2],
                    row + C + h * D, sizeof(float) * D);
        std::memcpy(vc + b * cache_v.strides[0] + h * cache_v.strides[1] + (length + t) * cache_v.strides[2],
                    row + 2 * C + h * D, sizeof(float) * D);
      }
    }
  }
  kernels::AttentionArgs a;
  a.B = B;
  a.H = H;
  a.Tq = T;
  a.Tk = length + T;
  a.D = D;
  a.q = x;  // slot 0 of [3, H, D]
  a.k = kc;
  a.v = vc;
  const int64_t q_s[3] = {xs0, D, xs1};
  std::copy(q_s, q_s + 3, a.q_s);
  std::copy(cache_k.strides.begin(), cache_k.strides.begin() + 3, a.k_s);
  std::copy(cache_v.strides.begin(), cache_v.strides.begin() + 3, a.v_s);
  a.causal = causal;
  a.scale = static_cast<float>(std::isnan(scale) ? 1.0 / std::sqrt(static_cast<double>(D)) : scale);
  a.o = out.data<float>();
  const int64_t o_s[3] = {T * C, D, C};  // [B, T, H, D] seen as [B, H, T, D]
  std::copy(o_s, o_s + 3, a.o_s);
  // The log-sum-exp the kernel writes is not returned: a stack buffer for a decode step.
  float lse_stack[256];
  std::vector<float> lse_heap;
  const int64_t nl = B * H * T;
  if (nl > 256) lse_heap.resize(static_cast<size_t>(nl));
  a.lse = nl > 256 ? lse_heap.data() : lse_stack;
  kernels::attention_forward(a);
  return out;
}

}  // namespace

std::vector<Tensor> attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double scale) {
  const char* op = "attention";
  Checked c = check_qkv(q, k, v, causal, scale, op);
  auto& a = c.args;
  // [B, Tq, H, D] memory seen as [B, H, Tq, D]: the heads merge back into [B, Tq, H * D] for free.
  Tensor buf = empty({a.B, a.Tq, a.H, a.D}, DType::Float32, q.device());
  Tensor out = permute(buf, {0, 2, 1, 3});
  Tensor lse = empty({a.B, a.H, a.Tq}, DType::Float32, q.device());
  if (out.numel() == 0 && lse.numel() == 0) return {out, lse};
  a.o = out.data<float>();
  strides3(out, a.o_s);
  a.lse = lse.data<float>();
  if (q.device().is_cuda()) {
    cuda::attention_forward(a, q.device().index);
  } else {
    kernels::attention_forward(a);
  }
  return {out, lse};
}

AttentionGrads attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& out, const Tensor& lse, bool causal, double scale,
                                  const std::optional<Tensor>& dq_into, const std::optional<Tensor>& dk_into,
                                  const std::optional<Tensor>& dv_into) {
  const char* op = "attention backward";
  Checked c = check_qkv(q, k, v, causal, scale, op);
  auto& a = c.args;
  for (const Tensor* t : {&dout, &out, &lse}) {
    require_same_device(q, *t, op);
    require_dtype(*t, DType::Float32, op, "the gradient and the saved tensors");
  }
  JOULE_CHECK(dout.shape == q.shape && out.shape == q.shape, Code::ShapeMismatch, op,
        ": expected the gradient and the saved output to have q's shape ", shape_str(q.shape), ", got ",
        shape_str(dout.shape), " and ", shape_str(out.shape));
  JOULE_CHECK((lse.shape == Shape{a.B, a.H, a.Tq}), Code::ShapeMismatch, op, ": the saved log-sum-exp has shape ",
        shape_str(lse.shape), ", expected [", a.B, ", ", a.H, ", ", a.Tq, "]");
  Tensor d = unit_last(dout), o = unit_last(out), l = contiguous(lse);
  a.dout = d.data<float>();
  strides3(d, a.do_s);
  a.o = const_cast<float*>(o.data<float>());
  strides3(o, a.o_s);
  a.lse = const_cast<float*>(l.data<float>());
  AttentionGrads g;
  auto target = [&](const std::optional<Tensor>& into, const Tensor& like, std::optional<Tensor>& ret,
                    float** ptr, int64_t s[3], const char* what) {
    Tensor t;
    if (into) {
      require_same_device(q, *into, op);
      require_dtype(*into, DType::Float32, op, what);
      JOULE_CHECK(into->shape == like.shape, Code::ShapeMismatch, op, ": ", what, " has shape ", shape_str(into->shape),
            ", expected ", shape_str(like.shape));
      JOULE_CHECK(into->strides[3] == 1 || into->shape[3] <= 1, Code::InvalidArgument, op, ": ", what,
            " must have a unit-stride last dimension");
      t = *into;
    } else {
      t = empty(like.shape, DType::Float32, q.device());
      ret = t;
    }
    *ptr = t.data<float>();
    strides3(t, s);
  };
  target(dq_into, q, g.dq, &a.dq, a.dq_s, "the query gradient");
  target(dk_into, k, g.dk, &a.dk, a.dk_s, "the key gradient");
  target(dv_into, v, g.dv, &a.dv, a.dv_s, "the value gradient");
  if (q.device().is_cuda()) {
    cuda::attention_backward(a, q.device().index);
  } else {
    kernels::attention_backward(a);
  }
  return g;
}

Tensor attention_qkv_cached(const Tensor& qkv, const Tensor& cache_k, const Tensor& cache_v, int64_t length,
                            int64_t heads, bool causal, double scale) {
  const char* op = "attention (KV cache)";
  require_dtype(qkv, DType::Float32, op, "qkv");
  JOULE_CHECK(heads >= 1 && qkv.dim() == 3 && qkv.shape[2] % (3 * heads) == 0, Code::ShapeMismatch, op,
        ": expected qkv [B, T, 3 * heads * D] with ", heads, " heads, got ", shape_str(qkv.shape));
  const int64_t B = qkv.shape[0], T = qkv.shape[1], C = qkv.shape[2] / 3, D = C / heads;
  const Shape cache_shape{B, heads, cache_k.dim() == 4 ? cache_k.shape[2] : -1, D};
  JOULE_CHECK(cache_k.shape == cache_shape && cache_v.shape == cache_shape, Code::ShapeMismatch, op,
        ": expected caches [", B, ", ", heads, ", capacity, ", D, "], got ", shape_str(cache_k.shape), " and ",
        shape_str(cache_v.shape));
  const int64_t capacity = cache_shape[2];
  JOULE_CHECK(length >= 0 && length + T <= capacity, Code::InvalidArgument, op, ": the cache holds ", capacity,
        " positions; ", length, " + ", T, " do not fit");
  if (qkv.device().is_cpu() && cached_cpu_fast(qkv, cache_k, cache_v)) {
    return attention_qkv_cached_cpu(qkv, cache_k, cache_v, length, B, T, heads, D, causal, scale, op);
  }
  Tensor x5 = reshape(qkv, {B, T, 3, heads, D});
  Tensor q = transpose(select(x5, 2, 0), 1, 2);
  copy_into(slice(cache_k, 2, length, length + T, 1), transpose(select(x5, 2, 1), 1, 2));
  copy_into(slice(cache_v, 2, length, length + T, 1), transpose(select(x5, 2, 2), 1, 2));
  std::vector<Tensor> r = attention_forward(q, slice(cache_k, 2, 0, length + T, 1), slice(cache_v, 2, 0, length + T, 1),
                                            causal, scale);
  return reshape(transpose(r[0], 1, 2), {B, T, C});
}

}  // namespace joule::ops
