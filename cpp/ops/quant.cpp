#include "ops/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/quant/quant.h"
#include "ops/ops.h"
#include "ops/util.h"

namespace joule::ops {
namespace {

void require_cpu_dtype(const Tensor& t, DType dtype, const char* op, const char* what) {
  require_cpu(t, op);
  require_dtype(t, dtype, op, what);
}

// Channel layout of a contiguous tensor for `axis` (< 0: per tensor): channels and inner size.
void channel_layout(const Tensor& t, int64_t axis, int64_t* channels, int64_t* inner) {
  *channels = 1;
  *inner = 1;
  if (axis < 0) return;
  JOULE_CHECK(axis < t.dim(), Code::InvalidArgument, "quantization axis ", axis, " is out of range for shape ",
              shape_str(t.shape));
  *channels = t.shape[axis];
  for (int64_t d = axis + 1; d < t.dim(); ++d) *inner *= t.shape[d];
}

void check_params(const Tensor& scale, const std::optional<Tensor>& zp, int64_t channels, const char* op) {
  require_cpu_dtype(scale, DType::Float32, op, "scale");
  JOULE_CHECK(scale.numel() == channels || scale.numel() == 1, Code::ShapeMismatch, op, ": expected ", channels,
              " scale(s) (or 1), got shape ", shape_str(scale.shape));
  if (zp) {
    require_cpu_dtype(*zp, DType::Int32, op, "zero point");
    JOULE_CHECK(zp->numel() == scale.numel(), Code::ShapeMismatch, op, ": zero point shape ", shape_str(zp->shape),
                " does not match scale shape ", shape_str(scale.shape));
  }
}

void check_finite(const float* x, int64_t n, const char* op) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) {
      fail(Code::InvalidArgument, op, ": the input holds a non-finite value (", x[i], " at flat index ", i,
           "); quantization needs finite inputs");
    }
  }
}

// The packed weight and its column sums, on the device of the input (`like`).
void check_packed(const Tensor& packed, const Tensor& col_sums, int64_t k, const char* op, const Tensor& like) {
  require_same_device(like, packed, op);
  require_same_device(like, col_sums, op);
  require_dtype(packed, DType::Int8, op, "the packed weight");
  require_dtype(col_sums, DType::Int32, op, "the column sums");
  JOULE_CHECK(col_sums.dim() == 1 && col_sums.is_contiguous(), Code::ShapeMismatch, op,
              ": expected column sums [N], got ", shape_str(col_sums.shape));
  const int64_t n = col_sums.shape[0];
  JOULE_CHECK(packed.dim() == 3 && packed.is_contiguous() && packed.shape[0] == quant::packed_panels(n) &&
                  packed.shape[1] == quant::packed_groups(k) && packed.shape[2] == quant::kPanelCols * quant::kGroup,
              Code::ShapeMismatch, op, ": the packed weight ", shape_str(packed.shape), " does not fit N = ", n,
              ", K = ", k, " (expected [", quant::packed_panels(n), ", ", quant::packed_groups(k), ", 256])");
}

// Per-column fp32 values of n (a [1] tensor is broadcast), absent when the tensor is. Points into
// the tensor when it already holds n contiguous floats (the usual case: decoding calls this for
// every layer of every token, so no copy), else into a broadcast copy.
class ColumnValues {
 public:
  ColumnValues(const std::optional<Tensor>& t, int64_t n, const char* op, const char* what) {
    if (!t) return;
    require_cpu_dtype(*t, DType::Float32, op, what);
    JOULE_CHECK(t->numel() == n || t->numel() == 1, Code::ShapeMismatch, op, ": expected ", what, " of ", n,
                " values (or 1), got shape ", shape_str(t->shape));
    if (t->numel() == n) {
      tensor_ = contiguous(*t);
      data_ = tensor_->data<float>();
    } else {
      broadcast_.assign(static_cast<size_t>(n), contiguous(*t).data<float>()[0]);
      data_ = broadcast_.data();
    }
  }
  const float* data() const { return data_; }

 private:
  std::optional<Tensor> tensor_;
  std::vector<float> broadcast_;
  const float* data_ = nullptr;
};

Tensor rows_of(const Tensor& x, int64_t k) { return contiguous(reshape(x, {-1, k})); }

// CUDA: a per-column (or per-row) fp32 vector of n on the device of `like` ([1] is broadcast).
Tensor device_values(const Tensor& t, int64_t n, const char* op, const char* what, const Tensor& like) {
  require_same_device(like, t, op);
  require_dtype(t, DType::Float32, op, what);
  JOULE_CHECK(t.numel() == n || t.numel() == 1, Code::ShapeMismatch, op, ": expected ", what, " of ", n,
              " values (or 1), got shape ", shape_str(t.shape));
  return contiguous(expand(reshape(t, {t.numel()}), {n}));
}

// The CUDA int8 GEMM (cuda/gemm_int8.cu) reads W in the same packed layout (no column sums: it
// multiplies signed by signed), so a model moved with to('cuda') needs nothing re-packed.
Tensor quant_linear_cuda(const Tensor& x, const Tensor& packed, const Tensor& w_scale, const std::optional<Tensor>& bias,
                         gemm::Activation activation, double input_scale, double outlier_threshold, int64_t n,
                         const char* op) {
  JOULE_CHECK(!(outlier_threshold > 0), Code::Device, op,
              ": outlierThreshold (the fp32 outlier columns) has no CUDA kernel yet: use 0 on CUDA, or run on 'cpu'");
  const int64_t k = x.shape.back();
  Tensor a = rows_of(x, k);
  Shape out_shape(x.shape.begin(), x.shape.end() - 1);
  out_shape.push_back(n);
  Tensor y = empty(out_shape, DType::Float32, x.device());
  Tensor scales = device_values(w_scale, n, op, "weight scales", x);
  Tensor bias_v = bias ? device_values(*bias, n, op, "bias", x) : Tensor();
  quant::QGemm g;
  g.m = a.shape[0];
  g.n = n;
  g.k = k;
  g.a_f32 = a.data<float>();
  g.a_rs = k;
  g.static_scale = static_cast<float>(input_scale);
  g.w_packed = packed.data<int8_t>();
  g.w_scales = scales.data<float>();
  g.c_f32 = y.data<float>();
  g.c_rs = n;
  g.bias = bias ? bias_v.data<float>() : nullptr;
  g.activation = activation;
  cuda::qgemm(g, x.device().index);
  return y;
}

}  // namespace

std::vector<Tensor> quant_params(const Tensor& x_in, int64_t axis, bool symmetric, int64_t qmin, int64_t qmax) {
  const char* op = "quantParams";
  require_cpu_dtype(x_in, DType::Float32, op, "the input");
  JOULE_CHECK(qmin < qmax && qmin >= -128 && qmax <= 255, Code::InvalidArgument, op, ": invalid range [", qmin, ", ",
              qmax, "]");
  if (axis >= 0) axis = normalize_axis(axis, x_in.dim(), op);
  Tensor x = contiguous(x_in);
  int64_t channels, inner;
  channel_layout(x, axis, &channels, &inner);
  const int64_t n = x.numel();
  const float* px = x.data<float>();
  check_finite(px, n, op);
  std::vector<float> lo(static_cast<size_t>(channels), 0.0f), hi(static_cast<size_t>(channels), 0.0f);
  for (int64_t e = 0; e < n; ++e) {
    const int64_t c = channels == 1 ? 0 : (e / inner) % channels;
    lo[c] = std::min(lo[c], px[e]);
    hi[c] = std::max(hi[c], px[e]);
  }
  Shape shape = axis < 0 ? Shape{} : Shape{channels};
  Tensor scale = empty(shape, DType::Float32, x.device());
  float* ps = scale.data<float>();
  if (symmetric) {
    // 0.0f first: an all-zero channel gets +0, not -0 (-lo of lo = 0 is -0).
    for (int64_t c = 0; c < channels; ++c) ps[c] = std::max(0.0f, std::max(-lo[c], hi[c])) / static_cast<float>(qmax);
    return {scale};
  }
  Tensor zp = empty(shape, DType::Int32, x.device());
  int32_t* pz = zp.data<int32_t>();
  for (int64_t c = 0; c < channels; ++c) {
    const float s = (hi[c] - lo[c]) / static_cast<float>(qmax - qmin);
    ps[c] = s;
    const float z = s > 0.0f ? static_cast<float>(qmin) - std::nearbyint(lo[c] / s) : static_cast<float>(qmin);
    pz[c] = static_cast<int32_t>(std::clamp<float>(z, static_cast<float>(qmin), static_cast<float>(qmax)));
  }
  return {scale, zp};
}

Tensor quantize(const Tensor& x_in, const Tensor& scale_in, const std::optional<Tensor>& zp_in, int64_t axis,
                int64_t qmin, int64_t qmax, DType dtype) {
  const char* op = "quantize";
  require_cpu_dtype(x_in, DType::Float32, op, "the input");
  JOULE_CHECK(dtype == DType::Int8 || dtype == DType::UInt8, Code::Dtype, op, ": expected int8 or uint8, got ",
              dtype_name(dtype));
  const int64_t lo = dtype == DType::Int8 ? -128 : 0, hi = dtype == DType::Int8 ? 127 : 255;
  JOULE_CHECK(qmin >= lo && qmax <= hi && qmin <= qmax, Code::InvalidArgument, op, ": range [", qmin, ", ", qmax,
              "] does not fit ", dtype_name(dtype));
  if (axis >= 0) axis = normalize_axis(axis, x_in.dim(), op);
  Tensor x = contiguous(x_in);
  int64_t channels, inner;
  channel_layout(x, axis, &channels, &inner);
  check_params(scale_in, zp_in, channels, op);
  Tensor scale = contiguous(scale_in);
  std::optional<Tensor> zp;
  if (zp_in) zp = contiguous(*zp_in);
  const int64_t pc = scale.numel() == 1 ? 1 : channels;
  for (int64_t c = 0; c < pc; ++c) {
    const float s = scale.data<float>()[c];
    JOULE_CHECK(std::isfinite(s) && s >= 0.0f, Code::InvalidArgument, op, ": scales must be finite and >= 0, got ", s);
  }
  check_finite(x.data<float>(), x.numel(), op);
  Tensor q = empty(x.shape, dtype, x.device());
  quant::quantize_affine(x.data<float>(), x.numel(), pc, inner, scale.data<float>(),
                         zp ? zp->data<int32_t>() : nullptr, static_cast<int32_t>(qmin), static_cast<int32_t>(qmax),
                         q.raw(), dtype == DType::UInt8);
  return q;
}

Tensor dequantize(const Tensor& q_in, const Tensor& scale_in, const std::optional<Tensor>& zp_in, int64_t axis) {
  const char* op = "dequantize";
  require_cpu(q_in, op);
  JOULE_CHECK(q_in.dtype == DType::Int8 || q_in.dtype == DType::UInt8, Code::Dtype, op,
              ": expected an int8 or uint8 tensor, got ", dtype_name(q_in.dtype));
  if (axis >= 0) axis = normalize_axis(axis, q_in.dim(), op);
  Tensor q = contiguous(q_in);
  int64_t channels, inner;
  channel_layout(q, axis, &channels, &inner);
  check_params(scale_in, zp_in, channels, op);
  Tensor scale = contiguous(scale_in);
  std::optional<Tensor> zp;
  if (zp_in) zp = contiguous(*zp_in);
  Tensor x = empty(q.shape, DType::Float32, q.device());
  quant::dequantize_affine(q.raw(), q.dtype == DType::UInt8, q.numel(), scale.numel() == 1 ? 1 : channels, inner,
                           scale.data<float>(), zp ? zp->data<int32_t>() : nullptr, x.data<float>());
  return x;
}

std::vector<Tensor> quant_pack_weight(const Tensor& w_in) {
  const char* op = "quantPackWeight";
  require_cpu_dtype(w_in, DType::Int8, op, "the weight");
  JOULE_CHECK(w_in.dim() == 2, Code::ShapeMismatch, op, ": expected an int8 weight [out, in], got ",
              shape_str(w_in.shape));
  Tensor w = contiguous(w_in);
  const int64_t n = w.shape[0], k = w.shape[1];
  JOULE_CHECK(k <= quant::kMaxK, Code::InvalidArgument, op, ": in features ", k, " exceed ", quant::kMaxK);
  Tensor packed = empty({quant::packed_panels(n), quant::packed_groups(k), quant::kPanelCols * quant::kGroup},
                        DType::Int8, w.device());
  Tensor sums = empty({n}, DType::Int32, w.device());
  quant::pack_weight(w.data<int8_t>(), n, k, k, packed.data<int8_t>(), sums.data<int32_t>());
  return {packed, sums};
}

Tensor quant_unpack_weight(const Tensor& packed, int64_t n, int64_t k) {
  const char* op = "quantUnpackWeight";
  JOULE_CHECK(n >= 0 && k >= 0, Code::InvalidArgument, op, ": negative size");
  require_cpu_dtype(packed, DType::Int8, op, "the packed weight");
  JOULE_CHECK(packed.dim() == 3 && packed.is_contiguous() && packed.shape[0] == quant::packed_panels(n) &&
                  packed.shape[1] == quant::packed_groups(k) && packed.shape[2] == 256,
              Code::ShapeMismatch, op, ": packed shape ", shape_str(packed.shape), " does not fit [", n, ", ", k, "]");
  Tensor w = empty({n, k}, DType::Int8, packed.device());
  quant::unpack_weight(packed.data<int8_t>(), n, k, w.data<int8_t>());
  return w;
}

Tensor quant_linear(const Tensor& x, const Tensor& packed, const Tensor& col_sums, const Tensor& w_scale,
                    const std::optional<Tensor>& bias, gemm::Activation activation, double input_scale,
                    double outlier_threshold) {
  const char* op = "quantLinear";
  require_dtype(x, DType::Float32, op, "the input");
  JOULE_CHECK(x.dim() >= 1, Code::ShapeMismatch, op, ": expected an input [..., in], got a scalar");
  const int64_t k = x.shape.back();
  check_packed(packed, col_sums, k, op, x);
  const int64_t n = col_sums.shape[0];
  JOULE_CHECK(std::isfinite(input_scale) && input_scale >= 0, Code::InvalidArgument, op,
              ": inputScale must be finite and >= 0 (0: dynamic), got ", input_scale);
  JOULE_CHECK(!(outlier_threshold < 0), Code::InvalidArgument, op, ": outlierThreshold must be >= 0, got ",
              outlier_threshold);
  if (x.device().is_cuda()) {
    return quant_linear_cuda(x, packed, w_scale, bias, activation, input_scale, outlier_threshold, n, op);
  }
  ColumnValues scales(w_scale, n, op, "weight scales");
  ColumnValues bias_v(bias, n, op, "bias");
  Tensor a = rows_of(x, k);
  const int64_t m = a.shape[0];
  Shape out_shape(x.shape.begin(), x.shape.end() - 1);
  out_shape.push_back(n);
  Tensor y = empty(out_shape, DType::Float32, x.device());

  quant::QGemm g;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a_f32 = a.data<float>();
  g.a_rs = k;
  g.static_scale = static_cast<float>(input_scale);
  g.w_packed = packed.data<int8_t>();
  g.w_col_sums = col_sums.data<int32_t>();
  g.w_scales = scales.data();
  g.c_f32 = y.data<float>();
  g.c_rs = n;
  g.bias = bias_v.data();
  g.activation = activation;

  if (outlier_threshold > 0 && m > 0 && n > 0) {
    // Columns (input features) with any |x| above the threshold.
    const float* pa = a.data<float>();
    const float thr = static_cast<float>(outlier_threshold);
    std::vector<float> colmax(static_cast<size_t>(k), 0.0f);
    for (int64_t i = 0; i < m; ++i) {
      const float* row = pa + i * k;
      for (int64_t p = 0; p < k; ++p) colmax[p] = std::max(colmax[p], std::fabs(row[p]));
    }
    std::vector<int64_t> idx;
    for (int64_t p = 0; p < k; ++p) {
      if (colmax[p] > thr) idx.push_back(p);
    }
    if (!idx.empty()) {
      const int64_t no = static_cast<int64_t>(idx.size());
      Tensor inliers = clone(a);
      Tensor xo = empty({m, no}, DType::Float32, x.device());
      Tensor wo = empty({no, n}, DType::Float32, x.device());
      float* pi = inliers.data<float>();
      float* pxo = xo.data<float>();
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t t = 0; t < no; ++t) {
          pxo[i * no + t] = pi[i * k + idx[t]];
          pi[i * k + idx[t]] = 0.0f;
        }
      }
      // The outlier rows of W^T, dequantized from the packed bytes.
      const int8_t* pw = packed.data<int8_t>();
      const int64_t groups = quant::packed_groups(k);
      float* pwo = wo.data<float>();
      for (int64_t t = 0; t < no; ++t) {
        const int64_t p = idx[t];
        for (int64_t j = 0; j < n; ++j) {
          const int8_t q = pw[(j / 64) * groups * 256 + (p / 4) * 256 + (j % 64) * 4 + p % 4];
          pwo[t * n + j] = static_cast<float>(q) * scales.data()[j];
        }
      }
      gemm::Sgemm s;
      s.m = m;
      s.n = n;
      s.k = no;
      s.a = pxo;
      s.a_rs = no;
      s.a_cs = 1;
      s.b = pwo;
      s.b_rs = n;
      s.b_cs = 1;
      s.c = y.data<float>();
      s.c_rs = n;
      s.c_cs = 1;
      gemm::sgemm(s);
      g.a_f32 = inliers.data<float>();
      g.accumulate = true;
      quant::qgemm(g);
      return y;
    }
  }
  quant::qgemm(g);
  return y;
}

Tensor quant_matmul_int8(const Tensor& a_in, const std::optional<Tensor>& a_scale, const Tensor& packed,
                         const Tensor& col_sums, const std::optional<Tensor>& w_scale,
                         const std::optional<Tensor>& bias, gemm::Activation activation) {
  const char* op = "quantMatmulInt8";
  require_dtype(a_in, DType::Int8, op, "A");
  JOULE_CHECK(a_in.dim() == 2, Code::ShapeMismatch, op, ": expected A [M, K], got ", shape_str(a_in.shape));
  const int64_t m = a_in.shape[0], k = a_in.shape[1];
  check_packed(packed, col_sums, k, op, a_in);
  const int64_t n = col_sums.shape[0];
  if (a_in.device().is_cuda()) {
    // Rows with a unit column stride are read in place (any row stride); other views are copied.
    Tensor a = a_in.strides[1] == 1 || k <= 1 ? a_in : contiguous(a_in);
    quant::QGemm g;
    g.m = m;
    g.n = n;
    g.k = k;
    g.a_i8 = a.data<int8_t>();
    g.a_rs = a.strides[0];
    g.w_packed = packed.data<int8_t>();
    g.c_rs = n;
    Tensor c = empty({m, n}, a_scale ? DType::Float32 : DType::Int32, a.device());
    Tensor rs, cs, bv;
    if (!a_scale) {
      g.c_i32 = c.data<int32_t>();
    } else {
      rs = device_values(*a_scale, m, op, "row scales", a);
      if (w_scale) cs = device_values(*w_scale, n, op, "weight scales", a);
      if (bias) bv = device_values(*bias, n, op, "bias", a);
      g.a_scales = rs.data<float>();
      g.w_scales = w_scale ? cs.data<float>() : nullptr;
      g.bias = bias ? bv.data<float>() : nullptr;
      g.activation = activation;
      g.c_f32 = c.data<float>();
    }
    cuda::qgemm(g, a.device().index);
    return c;
  }
  Tensor a = contiguous(a_in);
  quant::QGemm g;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a_i8 = a.data<int8_t>();
  g.a_rs = k;
  g.w_packed = packed.data<int8_t>();
  g.w_col_sums = col_sums.data<int32_t>();
  g.c_rs = n;
  if (!a_scale) {
    Tensor c = empty({m, n}, DType::Int32, a.device());
    g.c_i32 = c.data<int32_t>();
    quant::qgemm(g);
    return c;
  }
  ColumnValues rs(a_scale, m, op, "row scales");
  ColumnValues cs(w_scale, n, op, "weight scales");
  ColumnValues bv(bias, n, op, "bias");
  Tensor c = empty({m, n}, DType::Float32, a.device());
  g.a_scales = rs.data();
  g.w_scales = cs.data();
  g.bias = bv.data();
  g.activation = activation;
  g.c_f32 = c.data<float>();
  quant::qgemm(g);
  return c;
}

Tensor quant_linear_reference(const Tensor& a_in, const std::optional<Tensor>& a_scale, const Tensor& w_in,
                              const std::optional<Tensor>& w_scale, const std::optional<Tensor>& bias,
                              gemm::Activation activation, double input_scale) {
  const char* op = "quantLinearReference";
  require_cpu(a_in, op);
  require_cpu_dtype(w_in, DType::Int8, op, "the weight");
  JOULE_CHECK(w_in.dim() == 2 && a_in.dim() == 2 && a_in.shape[1] == w_in.shape[1], Code::ShapeMismatch, op,
              ": expected A [M, K] and W [N, K], got ", shape_str(a_in.shape), " and ", shape_str(w_in.shape));
  const int64_t m = a_in.shape[0], k = a_in.shape[1], n = w_in.shape[0];
  Tensor a = contiguous(a_in), w = contiguous(w_in);
  quant::QGemm g;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a_rs = k;
  g.c_rs = n;
  ColumnValues cs(w_scale, n, op, "weight scales"), bv(bias, n, op, "bias");
  // Row scales only mean something for int8 A (fp32 A is quantized here).
  ColumnValues rs(a.dtype == DType::Int8 ? a_scale : std::nullopt, m, op, "row scales");
  g.w_scales = cs.data();
  g.bias = bv.data();
  g.activation = activation;
  bool int_out = false;
  if (a.dtype == DType::Float32) {
    g.a_f32 = a.data<float>();
    g.static_scale = static_cast<float>(input_scale);
  } else {
    require_dtype(a, DType::Int8, op, "A");
    g.a_i8 = a.data<int8_t>();
    if (a_scale) {
      g.a_scales = rs.data();
    } else {
      int_out = true;
    }
  }
  Tensor c = empty({m, n}, int_out ? DType::Int32 : DType::Float32, a.device());
  if (int_out) {
    g.c_i32 = c.data<int32_t>();
  } else {
    g.c_f32 = c.data<float>();
  }
  quant::qgemm_reference(g, w.data<int8_t>(), k);
  return c;
}

std::string quant_kernel_name() { return quant::qgemm_kernel_name(); }

}  // namespace joule::ops
