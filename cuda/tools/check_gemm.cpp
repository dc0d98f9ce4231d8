// Native checks of the CUDA GEMM family (cuda/gemm.cu, cuda/gemm_int8.cu) against the CPU.
//
// fp32 tolerances are relative to the magnitude of each output, mag = |alpha| (|A| |B|) + |beta C| +
// |bias| (the sum of the absolute values of the terms), because that is what rounding errors scale
// with (a plain rtol on |C| fails wherever terms cancel):
//   'highest' (fp32 FMAs, another summation order than the CPU): each rounding is at most
//     u = 2^-24 of a partial sum (<= mag); the k roundings of both sides add like a random walk, so
//     |err| ~ sqrt(k) u mag; we allow 16 sqrt(k) u (8 sigma on each side) + 4u.
//   'high' (TF32): operands rounded to nearest with 10 explicit mantissa bits, each off by at most
//     2^-11 relative, a product by 2^-10 + 2^-22, so |err| <= 2^-10 mag (a hard bound, no sqrt(k))
//     plus the fp32 accumulation above: allow 1.2e-3 + the 'highest' term.
//   'medium' (BF16): 7 explicit mantissa bits, a product off by at most 2^-7 + 2^-16 = 7.83e-3:
//     allow 9e-3 + the 'highest' term.
// The epilogue's activation is 1-Lipschitz (ReLU) or nearly (GELU, 1.13): the bound is scaled 1.2x.
// int8 results are integers and must equal the CPU reference exactly.
#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/backend.h"
#include "cuda/tools/check.h"
#include "kernels/gemm/gemm.h"
#include "kernels/quant/quant.h"
#include "ops/nn.h"
#include "ops/ops.h"
#include "ops/quant.h"
#include "ops/util.h"

namespace joule::cuda_tools {
namespace {

using ops::MatmulPrecision;
const Device kGpu = Device::cuda(0);
const Device kCpu = Device::cpu();

const char* name_of(MatmulPrecision p) { return ops::matmul_precision_name(p); }

double tolerance(MatmulPrecision p, int64_t k) {
  const double u = std::ldexp(1.0, -24);
  const double fp32 = 16.0 * std::sqrt(static_cast<double>(std::max<int64_t>(k, 1))) * u + 4.0 * u;
  switch (p) {
    case MatmulPrecision::High: return 1.2e-3 + fp32;
    case MatmulPrecision::Medium: return 9e-3 + fp32;
    case MatmulPrecision::Highest: break;
  }
  return fp32;
}

// |got - want| <= tol * mag + 1e-30 everywhere; non-finite values must match (NaN with NaN).
void expect_within(const Tensor& got_any, const Tensor& want, const Tensor& mag, double tol, const std::string& what) {
  Tensor got = ops::to_device(got_any, kCpu);
  const int64_t n = want.numel();
  JOULE_CHECK(got.numel() == n, Code::Internal, what, ": ", got.numel(), " values, expected ", n);
  const float* g = got.data<float>();
  const float* w = want.data<float>();
  const float* m = mag.data<float>();
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(w[i]) || !std::isfinite(g[i])) {
      const bool ok = (std::isnan(w[i]) && std::isnan(g[i])) || w[i] == g[i];
      JOULE_CHECK(ok, Code::Internal, what, ": element ", i, " is ", g[i], ", expected ", w[i]);
      continue;
    }
    const double err = std::fabs(static_cast<double>(g[i]) - w[i]);
    const double allowed = tol * m[i] + 1e-30;
    worst = std::max(worst, m[i] > 0 ? err / m[i] : err);
    JOULE_CHECK(err <= allowed, Code::Internal, what, ": element ", i, " is ", g[i], ", expected ", w[i], " (error ",
                err, " > ", allowed, " = ", tol, " x magnitude ", m[i], ")");
  }
}

// One fp32 GEMM case: operands in their own buffers, addressed through strides.
struct Case {
  int64_t m, n, k;
  bool trans_a = false, trans_b = false, trans_c = false;
  int64_t step = 1;  // column-stride multiplier of the stored operands (non-contiguous views)
  float alpha = 1.0f, beta = 0.0f;
  bool bias = false;
  gemm::Activation activation = gemm::Activation::None;
  int64_t batch = 1;
  bool poison = false;  // NaN / Inf planted in A
};

std::string describe(const Case& c, MatmulPrecision p) {
  std::string s = std::string("sgemm ") + name_of(p) + " m=" + std::to_string(c.m) + " n=" + std::to_string(c.n) +
                  " k=" + std::to_string(c.k);
  if (c.trans_a) s += " A^T";
  if (c.trans_b) s += " B^T";
  if (c.trans_c) s += " C^T";
  if (c.step != 1) s += " step=" + std::to_string(c.step);
  if (c.alpha != 1.0f || c.beta != 0.0f) s += " alpha=" + std::to_string(c.alpha) + " beta=" + std::to_string(c.beta);
  if (c.bias) s += " +bias";
  if (c.activation == gemm::Activation::Relu) s += " relu";
  if (c.activation == gemm::Activation::Gelu) s += " gelu";
  if (c.batch != 1) s += " batch=" + std::to_string(c.batch);
  if (c.poison) s += " NaN/Inf";
  return s;
}

Tensor abs_copy(const Tensor& t) {
  Tensor out = ops::clone(t);
  float* p = out.data<float>();
  for (int64_t i = 0; i < out.numel(); ++i) p[i] = std::fabs(p[i]);
  return out;
}

void run_case(const Case& c, MatmulPrecision precision, uint64_t seed) {
  const std::string what = describe(c, precision);
  // Storage sizes per batch item.
  const int64_t a_size = c.m * c.k * c.step, b_size = c.k * c.n * c.step, c_size = c.m * c.n;
  Tensor a = random_cpu({std::max<int64_t>(1, c.batch * a_size)}, seed);
  Tensor b = random_cpu({std::max<int64_t>(1, c.batch * b_size)}, seed + 1);
  Tensor c0 = random_cpu({std::max<int64_t>(1, c.batch * c_size)}, seed + 2, -2.0f, 2.0f);
  Tensor bias = random_cpu({std::max<int64_t>(1, c.n)}, seed + 3);
  if (c.beta == 0.0f) {
    // beta == 0 must not read C: NaN there must not reach the output.
    float* p = c0.data<float>();
    for (int64_t i = 0; i < c0.numel(); ++i) p[i] = NAN;
  }
  gemm::Sgemm g;
  g.m = c.m;
  g.n = c.n;
  g.k = c.k;
  g.a_rs = c.trans_a ? c.step : c.k * c.step;
  g.a_cs = c.trans_a ? c.m * c.step : c.step;
  g.b_rs = c.trans_b ? c.step : c.n * c.step;
  g.b_cs = c.trans_b ? c.k * c.step : c.step;
  g.c_rs = c.trans_c ? 1 : c.n;
  g.c_cs = c.trans_c ? c.m : 1;
  g.alpha = c.alpha;
  g.beta = c.beta;
  g.activation = c.activation;
  if (c.poison && a_size > 0) {
    float* p = a.data<float>();
    p[0] = NAN;                               // A(0, 0): row 0 of C all NaN
    if (c.m > 2) p[2 * g.a_rs] = INFINITY;    // A(2, 0): row 2 of C +-Inf (B has no exact zeros in practice)
  }

  // CPU: the product, then the magnitude of its terms.
  Tensor want = ops::clone(c0), mag = ops::full(c0.shape, 0.0, DType::Float32, kCpu);
  Tensor abs_a = abs_copy(a), abs_b = abs_copy(b), abs_bias = abs_copy(bias);
  for (int64_t i = 0; i < c.batch; ++i) {
    gemm::Sgemm h = g;
    h.a = a.data<float>() + i * a_size;
    h.b = b.data<float>() + i * b_size;
    h.c = want.data<float>() + i * c_size;
    h.bias = c.bias ? bias.data<float>() : nullptr;
    gemm::sgemm(h);
    gemm::Sgemm mg = g;
    mg.a = abs_a.data<float>() + i * a_size;
    mg.b = abs_b.data<float>() + i * b_size;
    mg.c = mag.data<float>() + i * c_size;
    mg.alpha = std::fabs(c.alpha);
    mg.beta = 0.0f;
    mg.activation = gemm::Activation::None;
    mg.bias = c.bias ? abs_bias.data<float>() : nullptr;
    gemm::sgemm(mg);
    if (c.beta != 0.0f) {
      for (int64_t e = 0; e < c_size; ++e) {
        mag.data<float>()[i * c_size + e] += std::fabs(c.beta * c0.data<float>()[i * c_size + e]);
      }
    }
  }

  Tensor da = ops::to_device(a, kGpu), db = ops::to_device(b, kGpu), dc = ops::to_device(c0, kGpu);
  Tensor dbias = ops::to_device(bias, kGpu);
  gemm::Sgemm d = g;
  d.a = da.data<float>();
  d.b = db.data<float>();
  d.c = dc.data<float>();
  d.bias = c.bias ? dbias.data<float>() : nullptr;
  if (c.batch == 1) {
    cuda::sgemm(d, 0, precision);
  } else {
    cuda::sgemm_strided_batched(d, c.batch, a_size, b_size, c_size, 0, precision);
  }
  const double scale = c.activation == gemm::Activation::None ? 1.0 : 1.2;
  expect_within(dc, want, mag, scale * tolerance(precision, c.k), what);
}

const MatmulPrecision kPrecisions[] = {MatmulPrecision::Highest, MatmulPrecision::High, MatmulPrecision::Medium};
const int64_t kSizes[] = {1, 3, 17, 31, 33, 65, 127, 255, 257, 1000};

JOULE_GPU_CHECK(check_sgemm_sizes, "sgemm: highest/high/medium vs the CPU on awkward sizes") {
  uint64_t seed = 100;
  for (MatmulPrecision p : kPrecisions) {
    for (int64_t s : kSizes) {
      run_case({s, s, s}, p, seed++);
      run_case({s, 17, 257}, p, seed++);
      run_case({255, s, 31}, p, seed++);
      run_case({65, 127, s}, p, seed++);
    }
  }
}

JOULE_GPU_CHECK(check_sgemm_large, "sgemm: 4096^3 with TF32 and BF16") {
  run_case({4096, 4096, 4096}, MatmulPrecision::High, 7);
  run_case({4096, 4096, 4096}, MatmulPrecision::Medium, 8);
}

JOULE_GPU_CHECK(check_sgemm_transposes, "sgemm: every transpose and strided operands") {
  uint64_t seed = 300;
  for (MatmulPrecision p : kPrecisions) {
    for (int ta = 0; ta < 2; ++ta) {
      for (int tb = 0; tb < 2; ++tb) {
        for (int64_t step : {1, 2, 3}) {
          Case c{131, 67, 75};
          c.trans_a = ta;
          c.trans_b = tb;
          c.step = step;
          run_case(c, p, seed++);
          c.m = 128;
          c.n = 256;
          c.k = 64;  // whole tiles: the vectorized loads
          run_case(c, p, seed++);
        }
      }
    }
    Case tc{70, 45, 33};
    tc.trans_c = true;
    run_case(tc, p, seed++);
  }
}

JOULE_GPU_CHECK(check_sgemm_epilogue, "sgemm: alpha/beta accumulation, bias, ReLU and GELU") {
  uint64_t seed = 500;
  for (MatmulPrecision p : kPrecisions) {
    for (float alpha : {1.0f, -0.5f, 0.0f}) {
      for (float beta : {0.0f, 1.0f, 2.5f}) {
        Case c{97, 130, 71};
        c.alpha = alpha;
        c.beta = beta;
        run_case(c, p, seed++);
      }
    }
    for (gemm::Activation act : {gemm::Activation::None, gemm::Activation::Relu, gemm::Activation::Gelu}) {
      Case c{129, 77, 200};
      c.bias = true;
      c.activation = act;
      c.beta = 1.0f;
      run_case(c, p, seed++);
      c.beta = 0.0f;
      run_case(c, p, seed++);
    }
  }
}

JOULE_GPU_CHECK(check_sgemm_batched_and_empty, "sgemm: batched, m/n/k = 0, NaN/Inf propagation") {
  uint64_t seed = 700;
  for (MatmulPrecision p : kPrecisions) {
    Case batched{33, 65, 17};
    batched.batch = 5;
    run_case(batched, p, seed++);
    Case tb{130, 9, 40};
    tb.batch = 3;
    tb.trans_b = true;
    run_case(tb, p, seed++);
    for (Case c : {Case{0, 5, 7}, Case{5, 0, 7}, Case{6, 5, 0}}) {
      run_case(c, p, seed++);
      c.beta = 1.0f;
      c.bias = true;
      run_case(c, p, seed++);
    }
    Case poison{9, 33, 20};
    poison.poison = true;
    run_case(poison, p, seed++);
  }
}

// ---- the ops on CUDA tensors vs the same ops on the CPU ----

Tensor gpu(const Tensor& t) { return ops::to_device(t, kGpu); }

JOULE_GPU_CHECK(check_matmul_op, "matmul/linear/addmm_/linear_backward on CUDA vs CPU") {
  ops::set_matmul_precision(MatmulPrecision::Highest);
  // Broadcast batched matmul, 1-D operands.
  Tensor a = random_cpu({3, 1, 20, 33}, 1), b = random_cpu({4, 33, 9}, 2);
  expect_close(ops::matmul(gpu(a), gpu(b)), ops::matmul(a, b), 1e-4, 1e-5, "matmul broadcast batch");
  Tensor v = random_cpu({33}, 3);
  expect_close(ops::matmul(gpu(a), gpu(v)), ops::matmul(a, v), 1e-4, 1e-5, "matmul matrix @ vector");
  expect_close(ops::matmul(gpu(v), gpu(b)), ops::matmul(v, b), 1e-4, 1e-5, "matmul vector @ matrix");

  // linear (+ bias, activation) and its backward.
  Tensor x = random_cpu({5, 7, 48}, 4), w = random_cpu({30, 48}, 5), bias = random_cpu({30}, 6);
  for (gemm::Activation act : {gemm::Activation::None, gemm::Activation::Relu, gemm::Activation::Gelu}) {
    std::vector<Tensor> cy = ops::linear_train(x, w, bias, act);
    std::vector<Tensor> gy = ops::linear_train(gpu(x), gpu(w), gpu(bias), act);
    expect_close(gy[0], cy[0], 1e-4, 1e-5, "linear forward");
    Tensor dy = random_cpu(cy[0].shape, 7);
    std::optional<Tensor> cs, gs;
    if (act == gemm::Activation::Relu) {
      cs = cy[0];
      gs = gy[0];
    } else if (act == gemm::Activation::Gelu) {
      cs = cy[1];
      gs = gy[1];
    }
    ops::LinearGrads cg = ops::linear_backward(dy, x, w, cs, act, true, true, true, std::nullopt, std::nullopt, false, false);
    ops::LinearGrads gg =
        ops::linear_backward(gpu(dy), gpu(x), gpu(w), gs, act, true, true, true, std::nullopt, std::nullopt, false, false);
    expect_close(*gg.dx, *cg.dx, 1e-4, 1e-5, "linear backward dx");
    expect_close(*gg.dw, *cg.dw, 1e-4, 1e-5, "linear backward dw");
    expect_close(*gg.db, *cg.db, 1e-4, 1e-5, "linear backward db");
    // Accumulating into existing gradients (beta = 1 GEMM, accumulate column sums).
    Tensor dw0 = random_cpu(w.shape, 8), db0 = random_cpu({30}, 9);
    Tensor gdw = gpu(dw0), gdb = gpu(db0);
    ops::linear_backward(dy, x, w, cs, act, false, false, false, dw0, db0, true, true);
    ops::linear_backward(gpu(dy), gpu(x), gpu(w), gs, act, false, false, false, gdw, gdb, true, true);
    expect_close(gdw, dw0, 1e-4, 1e-5, "linear backward dw accumulate");
    expect_close(gdb, db0, 1e-4, 1e-5, "linear backward db accumulate");
    // Written over stale values (beta = 0 GEMM, storing column sums): the plain gradients again.
    ops::linear_backward(gpu(dy), gpu(x), gpu(w), gs, act, false, false, false, gdw, gdb, false, false);
    expect_close(gdw, *cg.dw, 1e-4, 1e-5, "linear backward dw written over");
    expect_close(gdb, *cg.db, 1e-4, 1e-5, "linear backward db written over");
  }

  // addmm_ into a transposed view.
  Tensor c = random_cpu({40, 25}, 10), am = random_cpu({25, 31}, 11), bm = random_cpu({31, 40}, 12);
  Tensor gc = gpu(c);
  ops::addmm_(ops::transpose(c, 0, 1), am, bm, 0.5, 2.0, std::nullopt, gemm::Activation::Relu);
  ops::addmm_(ops::transpose(gc, 0, 1), gpu(am), gpu(bm), 0.5, 2.0, std::nullopt, gemm::Activation::Relu);
  expect_close(gc, c, 1e-4, 1e-5, "addmm_ into a transposed view");
}

// ---- int8 ----

Tensor random_int8(const Shape& shape, uint64_t seed, int lo = -128, int hi = 127) {
  Tensor f = random_cpu(shape, seed, static_cast<float>(lo), static_cast<float>(hi) + 1.0f);
  Tensor q = empty(shape, DType::Int8, kCpu);
  const float* pf = f.data<float>();
  int8_t* pq = q.data<int8_t>();
  for (int64_t i = 0; i < q.numel(); ++i) pq[i] = static_cast<int8_t>(std::clamp<int>(static_cast<int>(std::floor(pf[i])), lo, hi));
  return q;
}

// Packs w [n, k] on the host and moves the packed bytes to the GPU.
Tensor packed_on_gpu(const Tensor& w) { return gpu(ops::quant_pack_weight(w)[0]); }

void int8_case(int64_t m, int64_t n, int64_t k, const Tensor& a, const Tensor& w, const std::string& label) {
  quant::QGemm ref;
  ref.m = m;
  ref.n = n;
  ref.k = k;
  ref.a_i8 = a.data<int8_t>();
  ref.a_rs = k;
  Tensor want = empty({m, n}, DType::Int32, kCpu);
  ref.c_i32 = want.data<int32_t>();
  ref.c_rs = n;
  quant::qgemm_reference(ref, w.data<int8_t>(), k);
  Tensor da = gpu(a), dw = packed_on_gpu(w);
  for (cuda::Int8Kernel kernel : {cuda::Int8Kernel::TensorCore, cuda::Int8Kernel::Dp4a, cuda::Int8Kernel::Auto}) {
    Tensor got = empty({m, n}, DType::Int32, kGpu);
    quant::QGemm g = ref;
    g.a_i8 = da.data<int8_t>();
    g.w_packed = dw.data<int8_t>();
    g.c_i32 = got.data<int32_t>();
    cuda::qgemm(g, 0, kernel);
    const char* kname = kernel == cuda::Int8Kernel::TensorCore ? "mma" : kernel == cuda::Int8Kernel::Dp4a ? "dp4a" : "auto";
    expect_close(got, want, 0, 0,
                 label + " int8 " + kname + " m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k));
  }
}

JOULE_GPU_CHECK(check_int8_exact, "int8 GEMM: exact int32 vs the CPU reference (mma and dp4a), saturation values") {
  const int64_t shapes[][3] = {{1, 1, 1},     {3, 5, 7},      {17, 65, 33},  {33, 127, 255},  {129, 257, 1000},
                               {256, 64, 4096}, {200, 130, 64}, {16, 300, 129}, {1, 1000, 513}, {300, 1, 77}};
  uint64_t seed = 900;
  for (const auto& s : shapes) {
    int8_case(s[0], s[1], s[2], random_int8({s[0], s[2]}, seed), random_int8({s[1], s[2]}, seed + 1), "random");
    seed += 2;
  }
  // Saturation: every product at the extremes, the largest sums K allows in practice.
  for (int av : {-128, 127}) {
    for (int wv : {-128, 127}) {
      Tensor a = empty({70, 4096}, DType::Int8, kCpu), w = empty({66, 4096}, DType::Int8, kCpu);
      std::memset(a.data<int8_t>(), av, static_cast<size_t>(a.numel()));
      std::memset(w.data<int8_t>(), wv, static_cast<size_t>(w.numel()));
      int8_case(70, 66, 4096, a, w, "saturated " + std::to_string(av) + "x" + std::to_string(wv));
    }
  }
}

JOULE_GPU_CHECK(check_int8_dequantized, "int8 GEMM: quantize rows + dequantizing epilogue vs the CPU") {
  uint64_t seed = 1000;
  for (const auto& s : std::vector<std::array<int64_t, 3>>{{1, 33, 70}, {9, 130, 257}, {200, 65, 128}, {64, 64, 1}}) {
    const int64_t m = s[0], n = s[1], k = s[2];
    Tensor x = random_cpu({m, k}, seed++, -3.0f, 3.0f);
    if (m > 3) {
      x.data<float>()[2 * k] = NAN;  // row 2: NaN scale, NaN outputs
      std::fill(x.data<float>() + 3 * k, x.data<float>() + 4 * k, 0.0f);  // row 3: zero row, scale 0
    }
    Tensor w = random_int8({n, k}, seed++, -127, 127);
    Tensor scales = random_cpu({n}, seed++, 0.001f, 0.02f), bias = random_cpu({n}, seed++);
    for (gemm::Activation act : {gemm::Activation::None, gemm::Activation::Relu, gemm::Activation::Gelu}) {
      for (float static_scale : {0.0f, 0.02f}) {
        quant::QGemm ref;
        ref.m = m;
        ref.n = n;
        ref.k = k;
        ref.a_f32 = x.data<float>();
        ref.a_rs = k;
        ref.static_scale = static_scale;
        ref.w_scales = scales.data<float>();
        ref.bias = bias.data<float>();
        ref.activation = act;
        ref.c_rs = n;
        Tensor want = empty({m, n}, DType::Float32, kCpu), want_rs = empty({m}, DType::Float32, kCpu);
        ref.c_f32 = want.data<float>();
        ref.row_scales_out = want_rs.data<float>();
        quant::qgemm_reference(ref, w.data<int8_t>(), k);
        Tensor dx = gpu(x), dw = packed_on_gpu(w), ds = gpu(scales), dbias = gpu(bias);
        for (cuda::Int8Kernel kernel : {cuda::Int8Kernel::TensorCore, cuda::Int8Kernel::Dp4a}) {
          Tensor got = empty({m, n}, DType::Float32, kGpu), got_rs = empty({m}, DType::Float32, kGpu);
          quant::QGemm g = ref;
          g.a_f32 = dx.data<float>();
          g.w_packed = dw.data<int8_t>();
          g.w_scales = ds.data<float>();
          g.bias = dbias.data<float>();
          g.c_f32 = got.data<float>();
          g.row_scales_out = got_rs.data<float>();
          cuda::qgemm(g, 0, kernel);
          const std::string label = "int8 dequantized m=" + std::to_string(m) + " n=" + std::to_string(n) +
                                    " k=" + std::to_string(k) + (kernel == cuda::Int8Kernel::Dp4a ? " dp4a" : " mma");
          expect_close(got_rs, want_rs, 0, 0, label + " row scales");
          // Same int32 sums; only the epilogue's erf / rounding may differ in the last bits.
          expect_close(got, want, 1e-5, 1e-6, label);
        }
      }
    }
  }
  // The op: quant_linear on CUDA with the packed weight moved there, per-tensor scale [1].
  Tensor x = random_cpu({2, 5, 96}, 77), w = random_int8({50, 96}, 78, -127, 127);
  std::vector<Tensor> pk = ops::quant_pack_weight(w);
  Tensor scale1 = random_cpu({1}, 79, 0.01f, 0.02f), bias = random_cpu({50}, 80);
  Tensor want = ops::quant_linear(x, pk[0], pk[1], scale1, bias, gemm::Activation::Relu, 0.0, 0.0);
  Tensor got = ops::quant_linear(gpu(x), gpu(pk[0]), gpu(pk[1]), gpu(scale1), gpu(bias), gemm::Activation::Relu, 0.0, 0.0);
  expect_close(got, want, 1e-5, 1e-6, "quant_linear op on CUDA");
  Tensor a8 = random_int8({12, 96}, 81);
  expect_close(ops::quant_matmul_int8(gpu(a8), std::nullopt, gpu(pk[0]), gpu(pk[1]), std::nullopt, std::nullopt,
                                      gemm::Activation::None),
               ops::quant_matmul_int8(a8, std::nullopt, pk[0], pk[1], std::nullopt, std::nullopt, gemm::Activation::None), 0,
               0, "quant_matmul_int8 op on CUDA (int32)");
  expect_error(Code::Device, "outlierThreshold on CUDA", [&] {
    ops::quant_linear(gpu(x), gpu(pk[0]), gpu(pk[1]), gpu(scale1), gpu(bias), gemm::Activation::None, 0.0, 6.0);
  });
}

}  // namespace
}  // namespace joule::cuda_tools
