#include <atomic>

#include "kernels/gemm/gemm.h"
#include "ops/nn.h"
#include "ops/ops.h"
#include "ops/util.h"

namespace joule::ops {

namespace {
std::atomic<MatmulPrecision> g_matmul_precision{MatmulPrecision::Highest};
}  // namespace

void set_matmul_precision(MatmulPrecision precision) { g_matmul_precision.store(precision); }
MatmulPrecision matmul_precision() { return g_matmul_precision.load(); }

MatmulPrecision parse_matmul_precision(const std::string& name) {
  if (name == "highest") return MatmulPrecision::Highest;
  if (name == "high") return MatmulPrecision::High;
  if (name == "medium") return MatmulPrecision::Medium;
  fail(Code::InvalidArgument, "expected a matmul precision 'highest', 'high' or 'medium', got '", name, "'");
}

const char* matmul_precision_name(MatmulPrecision precision) {
  switch (precision) {
    case MatmulPrecision::High: return "high";
    case MatmulPrecision::Medium: return "medium";
    case MatmulPrecision::Highest: break;
  }
  return "highest";
}

void sgemm_on(Device device, const gemm::Sgemm& g) {
  if (device.is_cuda()) {
    cuda::sgemm(g, device.index, matmul_precision());
  } else {
    gemm::sgemm(g);
  }
}

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  require_same_device(a_in, b_in, "matmul");
  JOULE_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, Code::ShapeMismatch, "matmul: expected tensors of at least 1 dimension, got ",
        shape_str(a_in.shape), " and ", shape_str(b_in.shape));
  JOULE_CHECK(a_in.dtype == DType::Float32 && b_in.dtype == DType::Float32, Code::Dtype,
        "matmul: expected float32 tensors, got ", dtype_name(a_in.dtype), " and ", dtype_name(b_in.dtype),
        " (use astype('float32'), or the int8 kernels of joule.quant)");
  // 1-D operands become a row (left) or a column (right) and that axis is dropped afterwards.
  Tensor a = a_in.dim() == 1 ? unsqueeze(a_in, 0) : a_in;
  Tensor b = b_in.dim() == 1 ? unsqueeze(b_in, 1) : b_in;
  int64_t m = a.shape[a.dim() - 2], k = a.shape[a.dim() - 1];
  int64_t kb = b.shape[b.dim() - 2], n = b.shape[b.dim() - 1];
  JOULE_CHECK(k == kb, Code::ShapeMismatch, "matmul: inner dimensions differ: ", shape_str(a_in.shape), " @ ",
        shape_str(b_in.shape), " (", k, " vs ", kb, ")");
  Shape a_batch(a.shape.begin(), a.shape.end() - 2), b_batch(b.shape.begin(), b.shape.end() - 2);
  Shape batch = broadcast_shapes(a_batch, b_batch);
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor out = empty(out_shape, DType::Float32, a.device());

  Shape a_full = batch, b_full = batch;
  a_full.insert(a_full.end(), {m, k});
  b_full.insert(b_full.end(), {k, n});
  Tensor ea = expand(a, a_full), eb = expand(b, b_full);

  gemm::Sgemm g;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = ea.data<float>();
  g.a_rs = ea.strides[ea.dim() - 2];
  g.a_cs = ea.strides[ea.dim() - 1];
  g.b = eb.data<float>();
  g.b_rs = eb.strides[eb.dim() - 2];
  g.b_cs = eb.strides[eb.dim() - 1];
  g.c = out.data<float>();
  g.c_rs = n;
  g.c_cs = 1;
  int64_t count = shape_numel(batch);
  if (count == 1) {
    sgemm_on(a.device(), g);
  } else if (count > 1) {
    std::vector<int64_t> a_off(count), b_off(count), c_off(count);
    for (int64_t i = 0; i < count; ++i) {
      int64_t rem = i, ao = 0, bo = 0;
      for (int64_t d = static_cast<int64_t>(batch.size()) - 1; d >= 0; --d) {
        int64_t idx = rem % batch[d];
        rem /= batch[d];
        ao += idx * ea.strides[d];
        bo += idx * eb.strides[d];
      }
      a_off[i] = ao;
      b_off[i] = bo;
      c_off[i] = i * m * n;
    }
    if (a.device().is_cuda()) {
      cuda::sgemm_batched(g, count, a_off.data(), b_off.data(), c_off.data(), a.device().index, matmul_precision());
    } else {
      gemm::sgemm_batched(g, count, a_off.data(), b_off.data(), c_off.data());
    }
  }
  Tensor result = out;
  if (b_in.dim() == 1) result = squeeze(result, {result.dim() - 1});
  if (a_in.dim() == 1) result = squeeze(result, {result.dim() - (b_in.dim() == 1 ? 1 : 2)});
  return result;
}

}  // namespace joule::ops
