// GPU checks of the non-GEMM ops: reductions, softmax, casts, clamp/where, indexing, cross entropy, layer norm,
// random numbers and the fused optimizer steps. Each runs the op on the device and on the CPU with the same inputs
// (awkward sizes, 3-D middle-axis and two-axis reductions, non-contiguous views, NaN/inf) and compares; error paths
// must give the CPU's code and message.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "cuda/tools/check.h"
#include "ops/nn.h"
#include "ops/ops.h"

namespace joule::cuda_tools {
namespace {

using ops::ReduceOp;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
const int64_t kLengths[] = {1, 3, 17, 33, 257, 1000, 4097};

Tensor on_gpu(const Tensor& t) { return ops::to_device(t, target_device()); }
std::string num(int64_t n) { return std::to_string(n); }

Tensor host_floats(const std::vector<float>& v, const Shape& shape) {
  return ops::from_host(v.data(), v.size() * sizeof(float), shape, DType::Float32, Device::cpu());
}
Tensor host_ints(const std::vector<int32_t>& v, const Shape& shape) {
  return ops::from_host(v.data(), v.size() * sizeof(int32_t), shape, DType::Int32, Device::cpu());
}

// Puts NaN, +inf and -inf at a few places of a CPU float32 tensor.
void plant_specials(const Tensor& t) {
  float* p = t.data<float>();
  const int64_t n = t.numel();
  const float specials[] = {kNaN, kInf, -kInf};
  for (int i = 0; i < 3 && n > 3 * (i + 1); ++i) p[(n / 3) * i + 1] = specials[i];
}

// Both sides must fail with the same code and the same message.
template <typename Cpu, typename Gpu>
void expect_same_error(const std::string& what, Cpu cpu, Gpu gpu) {
  std::string want, got;
  Code want_code = Code::Internal, got_code = Code::Internal;
  try {
    cpu();
  } catch (const Error& e) {
    want = e.what();
    want_code = e.code();
  }
  JOULE_CHECK(!want.empty(), Code::Internal, what, ": the CPU op did not fail");
  try {
    gpu();
  } catch (const Error& e) {
    got = e.what();
    got_code = e.code();
  }
  JOULE_CHECK(!got.empty(), Code::Internal, what, ": the device op did not fail (the CPU said: ", want, ")");
  JOULE_CHECK(got_code == want_code && got == want, Code::Internal, what, ": the device op failed with ",
              code_name(got_code), " '", got, "', the CPU with ", code_name(want_code), " '", want, "'");
}

// Runs every reduction over `axes` of x (CPU) and of its device copy `xg` (which may be a view) and compares.
void compare_reductions(const Tensor& x, const Tensor& xg, const std::vector<int64_t>& axes, const std::string& what) {
  int64_t n_red = 1;
  if (axes.empty()) n_red = x.numel();
  for (int64_t a : axes) n_red *= x.shape[normalize_axis(a, x.dim(), "check")];
  const double atol = 1e-5 * std::sqrt(static_cast<double>(n_red) + 1);
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min, ReduceOp::Prod, ReduceOp::ArgMax,
                      ReduceOp::ArgMin}) {
    for (bool keep : {false, true}) {
      const std::string name = what + " " + ops::reduce_name(op) + (keep ? " keepDims" : "");
      Tensor want = ops::reduce(op, x, axes, keep);
      Tensor got = ops::reduce(op, xg, axes, keep);
      const bool exact = op == ReduceOp::Max || op == ReduceOp::Min || op == ReduceOp::ArgMax || op == ReduceOp::ArgMin;
      if (exact || x.dtype != DType::Float32) expect_close(got, want, 0, 0, name);
      else if (op == ReduceOp::Prod) expect_close(got, want, 1e-5, 0, name);
      else expect_close(got, want, 1e-5, op == ReduceOp::Mean ? atol / static_cast<double>(n_red) : atol, name);
    }
  }
}

// ---- reductions ----

JOULE_GPU_CHECK(check_reduce_rows, "reduce: every op over the last axis and the first axis, awkward lengths") {
  for (int64_t n : kLengths) {
    // Values near 1 keep long products finite (and meaningful).
    Tensor x = random_cpu({5, n}, 1000 + n, 0.9f, 1.1f);
    compare_reductions(x, on_gpu(x), {1}, "[5, " + num(n) + "] axis 1");
    compare_reductions(x, on_gpu(x), {-1}, "[5, " + num(n) + "] axis -1");
    Tensor y = random_cpu({n, 7}, 2000 + n, 0.9f, 1.1f);
    compare_reductions(y, on_gpu(y), {0}, "[" + num(n) + ", 7] axis 0");
    compare_reductions(y, on_gpu(y), {}, "[" + num(n) + ", 7] all axes");
  }
}

JOULE_GPU_CHECK(check_reduce_3d, "reduce: 3-D over the middle axis, over two axes, non-contiguous views, int dtypes") {
  for (int64_t n : {int64_t{1}, int64_t{17}, int64_t{257}, int64_t{4097}}) {
    Tensor x = random_cpu({4, n, 6}, 3000 + n, 0.95f, 1.05f);
    Tensor xg = on_gpu(x);
    const std::string s = "[4, " + num(n) + ", 6]";
    compare_reductions(x, xg, {1}, s + " axis 1");
    compare_reductions(x, xg, {0, 2}, s + " axes 0, 2");
    compare_reductions(x, xg, {1, 2}, s + " axes 1, 2");
    // Views: a transpose and a strided slice of the device tensor against the same views on the CPU.
    compare_reductions(ops::transpose(x, 0, 2), ops::transpose(xg, 0, 2), {1}, s + "^T(0,2) axis 1");
    compare_reductions(ops::transpose(x, 1, 2), ops::transpose(xg, 1, 2), {2}, s + "^T(1,2) axis 2");
    compare_reductions(ops::slice(x, 1, 0, n, 2), ops::slice(xg, 1, 0, n, 2), {1}, s + "[:, ::2] axis 1");
    // Integer inputs: wrapping int32 sums and products, int8/uint8 extremes.
    Tensor xi = ops::cast(random_cpu({4, n, 6}, 3100 + n, -200.f, 200.f), DType::Int32);
    compare_reductions(xi, on_gpu(xi), {1}, s + " int32 axis 1");
    for (DType dt : {DType::Int8, DType::UInt8}) {
      Tensor xs = ops::cast(random_cpu({4, n, 6}, 3200 + n, -100.f, 200.f), dt);
      compare_reductions(xs, on_gpu(xs), {0, 2}, s + " " + dtype_name(dt) + " axes 0, 2");
    }
  }
  // Long reductions to one or a few outputs (the chunked paths): all of 300 x 1000, 100000 x 3 over axis 0.
  Tensor big = random_cpu({300, 1000}, 3300);
  compare_reductions(big, on_gpu(big), {}, "[300, 1000] all");
  Tensor tall = random_cpu({100000, 3}, 3400);
  compare_reductions(tall, on_gpu(tall), {0}, "[100000, 3] axis 0");
  Tensor wide = random_cpu({2, 200003}, 3500);
  compare_reductions(wide, on_gpu(wide), {1}, "[2, 200003] axis 1");
}

JOULE_GPU_CHECK(check_reduce_edges, "reduce: NaN, +-inf, all-equal rows (first index), empty reductions") {
  // Row 0: all equal (argmax/argmin 0); row 1: NaN at 5 and 9 (the first NaN wins); row 2: +inf twice, -inf twice;
  // row 3: -0 and +0 ties.
  const int64_t n = 12;
  std::vector<float> v(4 * n, 0.5f);
  v[n + 5] = kNaN;
  v[n + 9] = kNaN;
  v[2 * n + 3] = kInf;
  v[2 * n + 7] = kInf;
  v[2 * n + 1] = -kInf;
  v[2 * n + 10] = -kInf;
  for (int64_t j = 0; j < n; ++j) v[3 * n + j] = j % 2 ? 0.f : -0.f;
  Tensor x = host_floats(v, {4, n});
  compare_reductions(x, on_gpu(x), {1}, "edge rows axis 1");
  compare_reductions(x, on_gpu(x), {0}, "edge rows axis 0");
  for (int64_t len : {int64_t{300}, int64_t{20000}}) {  // the same in the block and chunked paths
    Tensor y = random_cpu({3, len}, 3600 + len, 0.9f, 1.1f);  // no underflow: inf * 0 would depend on the order
    plant_specials(y);
    compare_reductions(y, on_gpu(y), {1}, "specials [3, " + num(len) + "]");
    Tensor flat = random_cpu({3, len}, 3700 + len);
    float* p = flat.data<float>();
    for (int64_t i = 0; i < flat.numel(); ++i) p[i] = 2.f;
    compare_reductions(flat, on_gpu(flat), {1}, "all-equal [3, " + num(len) + "]");
  }
  // Empty reductions: sums are 0 (int32 too), prod 1, mean NaN; max/argmax have no identity.
  Tensor e = random_cpu({3, 0}, 1);
  Tensor eg = on_gpu(e);
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Prod}) {
    expect_close(ops::reduce(op, eg, {1}, false), ops::reduce(op, e, {1}, false), 0, 0,
                 std::string("empty ") + ops::reduce_name(op));
  }
  Tensor ei = ops::cast(e, DType::Int32);
  expect_close(ops::reduce(ReduceOp::Sum, on_gpu(ei), {1}, true), ops::reduce(ReduceOp::Sum, ei, {1}, true), 0, 0,
               "empty int32 sum");
  for (ReduceOp op : {ReduceOp::Max, ReduceOp::ArgMin}) {
    expect_same_error(std::string("empty ") + ops::reduce_name(op), [&] { ops::reduce(op, e, {1}, false); },
                      [&] { ops::reduce(op, eg, {1}, false); });
  }
}

JOULE_GPU_CHECK(check_var_logsumexp, "var (correction 0/1), logsumexp with +-inf rows, awkward lengths") {
  for (int64_t n : kLengths) {
    Tensor x = random_cpu({3, n, 2}, 4000 + n, -3.f, 3.f);
    Tensor xg = on_gpu(x);
    const std::string s = "[3, " + num(n) + ", 2]";
    for (int64_t corr : {0, 1}) {
      expect_close(ops::variance(xg, {1}, corr, false), ops::variance(x, {1}, corr, false), 1e-4, 1e-5,
                   s + " var axis 1 correction " + num(corr));
      expect_close(ops::variance(xg, {0, 2}, corr, true), ops::variance(x, {0, 2}, corr, true), 1e-4, 1e-5,
                   s + " var axes 0, 2");
    }
    expect_close(ops::logsumexp(xg, {1}, false), ops::logsumexp(x, {1}, false), 1e-5, 1e-5, s + " logsumexp axis 1");
    expect_close(ops::logsumexp(xg, {}, true), ops::logsumexp(x, {}, true), 1e-5, 1e-5, s + " logsumexp all");
  }
  std::vector<float> v = {-kInf, -kInf, -kInf, 1.f, kInf, 2.f, 1.f, kNaN, 3.f, 0.f, 1.f, 2.f};
  Tensor x = host_floats(v, {4, 3});
  expect_close(ops::logsumexp(on_gpu(x), {1}, false), ops::logsumexp(x, {1}, false), 1e-6, 1e-6, "logsumexp edges");
  Tensor e = random_cpu({2, 0}, 2);
  expect_close(ops::logsumexp(on_gpu(e), {1}, false), ops::logsumexp(e, {1}, false), 0, 0, "logsumexp empty");
}

JOULE_GPU_CHECK(check_softmax, "softmax/logSoftmax: rows of 1..4097 (block per row), other axes (strided), edges") {
  for (int64_t n : kLengths) {
    Tensor x = random_cpu({6, n}, 5000 + n, -8.f, 8.f);
    Tensor xg = on_gpu(x);
    const std::string s = "[6, " + num(n) + "]";
    for (int64_t axis : {1, 0}) {
      expect_close(ops::softmax(xg, axis), ops::softmax(x, axis), 1e-5, 1e-7, s + " softmax axis " + num(axis));
      expect_close(ops::log_softmax(xg, axis), ops::log_softmax(x, axis), 1e-5, 1e-5,
                   s + " logSoftmax axis " + num(axis));
    }
    Tensor y = random_cpu({2, n, 5}, 5100 + n, -8.f, 8.f);
    expect_close(ops::softmax(on_gpu(y), 1), ops::softmax(y, 1), 1e-5, 1e-7, "[2, " + num(n) + ", 5] softmax axis 1");
    expect_close(ops::log_softmax(ops::transpose(on_gpu(y), 0, 2), 2), ops::log_softmax(ops::transpose(y, 0, 2), 2),
                 1e-5, 1e-5, "transposed view logSoftmax");
  }
  // A NaN row, a -inf row, a row with +inf, a normal row; along both axes.
  std::vector<float> v = {1.f, kNaN, 2.f, -kInf, -kInf, -kInf, 0.f, kInf, 1.f, 1.f, 2.f, 3.f};
  Tensor x = host_floats(v, {4, 3});
  for (int64_t axis : {1, 0}) {
    expect_close(ops::softmax(on_gpu(x), axis), ops::softmax(x, axis), 1e-6, 1e-7, "softmax edges");
    expect_close(ops::log_softmax(on_gpu(x), axis), ops::log_softmax(x, axis), 1e-6, 1e-6, "logSoftmax edges");
  }
  Tensor s0 = random_cpu({}, 3);
  expect_close(ops::softmax(on_gpu(s0), 0), ops::softmax(s0, 0), 0, 0, "softmax of a 0-d tensor");
}

// ---- casts, fill, clamp, where ----

JOULE_GPU_CHECK(check_cast, "cast: every dtype pair (truncation, saturation, NaN -> 0, wrapping), strided sources") {
  Tensor x = random_cpu({37, 29}, 6000, -400.f, 400.f);
  plant_specials(x);
  x.data<float>()[0] = 2147483647.f * 2;  // saturates int32
  x.data<float>()[5] = -2.5f;             // truncates to -2
  const DType all[] = {DType::Float32, DType::Int32, DType::Int8, DType::UInt8};
  for (DType from : all) {
    Tensor src = ops::cast(x, from);
    Tensor src_g = on_gpu(src);
    for (DType to : all) {
      const std::string s = std::string(dtype_name(from)) + " -> " + dtype_name(to);
      expect_close(ops::cast(src_g, to), ops::cast(src, to), 0, 0, s);
      expect_close(ops::cast(ops::transpose(src_g, 0, 1), to), ops::cast(ops::transpose(src, 0, 1), to), 0, 0,
                   s + " (transposed)");
    }
    // Non-float32 strided copies and concat with promotion go through the same kernel.
    expect_close(ops::contiguous(ops::slice(src_g, 1, 1, 29, 3)), ops::contiguous(ops::slice(src, 1, 1, 29, 3)), 0, 0,
                 std::string(dtype_name(from)) + " strided contiguous()");
    expect_close(ops::concat({src_g, ops::cast(src_g, DType::Int8)}, 0), ops::concat({src, ops::cast(src, DType::Int8)}, 0),
                 0, 0, std::string(dtype_name(from)) + " concat with int8");
  }
  for (DType dt : all) {
    Tensor t = ops::full({5, 7}, 0, dt, Device::cpu());
    Tensor tg = ops::full({5, 7}, 0, dt, target_device());
    ops::fill(ops::slice(t, 1, 0, 7, 2), -3.7);
    ops::fill(ops::slice(tg, 1, 0, 7, 2), -3.7);
    expect_close(tg, t, 0, 0, std::string("fill of a strided ") + dtype_name(dt) + " view");
  }
}

JOULE_GPU_CHECK(check_clamp_where, "clamp (float/int, NaN bounds), where (uint8/float/int conditions, broadcast)") {
  Tensor x = random_cpu({33, 17}, 7000, -5.f, 5.f);
  plant_specials(x);
  Tensor xg = on_gpu(x);
  const double nan = std::nan("");
  const std::pair<double, double> bounds[] = {{-1.5, 2.25}, {nan, 0.5}, {-0.5, nan}, {nan, nan}, {-2, 3}};
  for (auto [lo, hi] : bounds) {
    expect_close(ops::clamp(xg, lo, hi), ops::clamp(x, lo, hi), 0, 0, "clamp float32");
    expect_close(ops::clamp(ops::transpose(xg, 0, 1), lo, hi), ops::clamp(ops::transpose(x, 0, 1), lo, hi), 0, 0,
                 "clamp float32 transposed");
    for (DType dt : {DType::Int32, DType::Int8, DType::UInt8}) {
      Tensor xi = ops::cast(x, dt);
      expect_close(ops::clamp(on_gpu(xi), lo, hi), ops::clamp(xi, lo, hi), 0, 0,
                   std::string("clamp ") + dtype_name(dt));
    }
  }
  Tensor a = random_cpu({4, 1, 9}, 7100), b = random_cpu({1, 5, 9}, 7200);
  Tensor c = random_cpu({4, 5, 1}, 7300);
  for (DType ct : {DType::UInt8, DType::Float32, DType::Int32}) {
    Tensor cond = ct == DType::UInt8 ? ops::binary_scalar(ops::BinaryOp::Gt, c, 0, false)
                                     : ops::cast(ops::binary_scalar(ops::BinaryOp::Mul, c, 2, false), ct);
    expect_close(ops::where(on_gpu(cond), on_gpu(a), on_gpu(b)), ops::where(cond, a, b), 0, 0,
                 std::string("where, ") + dtype_name(ct) + " condition");
  }
  Tensor cn = host_floats({kNaN, 0.f, -0.f, 1.f}, {4, 1, 1});
  expect_close(ops::where(on_gpu(cn), on_gpu(a), on_gpu(b)), ops::where(cn, a, b), 0, 0, "where, NaN/-0 conditions");
  Tensor ai = ops::cast(ops::binary_scalar(ops::BinaryOp::Mul, a, 50, false), DType::Int32);
  Tensor cond = ops::binary_scalar(ops::BinaryOp::Gt, c, 0, false);
  expect_close(ops::where(on_gpu(cond), on_gpu(ai), on_gpu(b)), ops::where(cond, ai, b), 0, 0,
               "where int32/float32 (promoted)");
}

// ---- indexing ----

JOULE_GPU_CHECK(check_indexing, "indexSelect, gather, scatterAdd: every axis, negative indices, views, dtypes") {
  Tensor x = random_cpu({7, 33, 5}, 8000);
  for (int64_t axis = 0; axis < 3; ++axis) {
    const int32_t size = static_cast<int32_t>(x.shape[axis]);
    for (DType dt : {DType::Float32, DType::Int32, DType::UInt8}) {
      Tensor a = ops::cast(ops::binary_scalar(ops::BinaryOp::Mul, x, 100, false), dt);
      Tensor ag = on_gpu(a);
      const std::string s = std::string(dtype_name(dt)) + " axis " + num(axis);
      Tensor idx = random_int32_cpu({17}, 8100 + axis, -size, size);
      expect_close(ops::index_select(ag, axis, on_gpu(idx)), ops::index_select(a, axis, idx), 0, 0,
                   "indexSelect " + s);
      expect_close(ops::index_select(ops::transpose(ag, 0, 2), 2 - axis, on_gpu(idx)),
                   ops::index_select(ops::transpose(a, 0, 2), 2 - axis, idx), 0, 0, "indexSelect transposed " + s);
      Shape gshape = a.shape;
      gshape[axis] = 9;
      for (int64_t d = 0; d < 3; ++d) if (d != axis) gshape[d] = std::max<int64_t>(1, a.shape[d] - 1);
      Tensor gidx = random_int32_cpu(gshape, 8200 + axis, -size, size);
      expect_close(ops::gather(ag, axis, on_gpu(gidx)), ops::gather(a, axis, gidx), 0, 0, "gather " + s);
      // scatterAdd: many collisions (values 0..2) so the order of additions matters for floats.
      Tensor sidx = random_int32_cpu(gshape, 8300 + axis, -1, 3);
      Tensor src = ops::cast(random_cpu(gshape, 8400 + axis, -50.f, 50.f), dt);
      expect_close(ops::scatter_add(ag, axis, on_gpu(sidx), on_gpu(src)), ops::scatter_add(a, axis, sidx, src), 0, 0,
                   "scatterAdd " + s);
      Tensor src_t = ops::transpose(ops::cast(random_cpu({gshape[2], gshape[1], gshape[0]}, 8500, -5.f, 5.f), dt), 0, 2);
      expect_close(ops::scatter_add(ag, axis, on_gpu(sidx), on_gpu(src_t)), ops::scatter_add(a, axis, sidx, src_t), 0,
                   0, "scatterAdd, transposed src " + s);
    }
  }
  // A larger scatter along a long axis (embedding-gradient shape): 4097 rows into 1000.
  Tensor grad = random_cpu({4097, 16}, 8600);
  Tensor rows = random_int32_cpu({4097, 1}, 8700, 0, 1000);
  Tensor rows16 = ops::contiguous(ops::expand(rows, {4097, 16}));
  Tensor zeros = ops::full({1000, 16}, 0, DType::Float32, Device::cpu());
  expect_close(ops::scatter_add(on_gpu(zeros), 0, on_gpu(rows16), on_gpu(grad)), ops::scatter_add(zeros, 0, rows16, grad),
               0, 0, "scatterAdd 4097 rows into 1000");
  // Out-of-range indices: INVALID_ARGUMENT with the CPU's message (the first bad index is reported).
  Tensor bad = host_ints({1, 2, 33, -40, 0}, {5});
  Tensor xg = on_gpu(x);
  expect_same_error("indexSelect out of range", [&] { ops::index_select(x, 1, bad); },
                    [&] { ops::index_select(xg, 1, on_gpu(bad)); });
  Tensor gbad = ops::contiguous(ops::expand(ops::reshape(bad, {1, 5, 1}), {2, 5, 3}));
  expect_same_error("gather out of range", [&] { ops::gather(x, 1, gbad); }, [&] { ops::gather(xg, 1, on_gpu(gbad)); });
  Tensor sbad = host_ints({0, 7}, {2, 1, 1});
  Tensor ssrc = random_cpu({2, 1, 1}, 8800);
  expect_same_error("scatterAdd out of range", [&] { ops::scatter_add(x, 0, sbad, ssrc); },
                    [&] { ops::scatter_add(xg, 0, on_gpu(sbad), on_gpu(ssrc)); });
  if (!dry_run()) {
    expect_error(Code::Device, "indexSelect with the index on the CPU", [&] { ops::index_select(xg, 0, bad); });
  }
}

// ---- cross entropy and layer norm ----

void compare_cross_entropy(const Tensor& logits, const Tensor& target, double smoothing, int64_t ignore,
                           const std::string& what) {
  Tensor lg = on_gpu(logits), tg = on_gpu(target);
  const double n_rows = static_cast<double>(logits.numel() / std::max<int64_t>(1, logits.shape[1]));
  for (ops::Reduction red : {ops::Reduction::None, ops::Reduction::Mean, ops::Reduction::Sum}) {
    const char* rname = red == ops::Reduction::None ? "none" : red == ops::Reduction::Mean ? "mean" : "sum";
    const std::string s = what + " reduction " + rname;
    auto want = ops::cross_entropy(logits, target, smoothing, ignore, red);
    auto got = ops::cross_entropy(lg, tg, smoothing, ignore, red);
    expect_close(got[0], want[0], 1e-5, red == ops::Reduction::Sum ? 1e-5 * n_rows : 1e-5, s + " loss");
    expect_close(got[1], want[1], 1e-5, 1e-5, s + " lse");
    Tensor grad = red == ops::Reduction::None ? random_cpu(want[0].shape, 9999, 0.5f, 1.5f) : host_floats({0.75f}, {});
    Tensor gw = ops::cross_entropy_backward(grad, logits, target, want[1], smoothing, ignore, red);
    Tensor gg = ops::cross_entropy_backward(on_gpu(grad), lg, tg, got[1], smoothing, ignore, red);
    expect_close(gg, gw, 1e-4, 1e-6, s + " backward");
  }
}

JOULE_GPU_CHECK(check_cross_entropy, "crossEntropy forward/backward: classes 1..4097, smoothing, ignoreIndex, spatial") {
  for (int64_t c : kLengths) {
    const int64_t n = 9;
    Tensor logits = random_cpu({n, c}, 9000 + c, -6.f, 6.f);
    Tensor target = random_int32_cpu({n}, 9100 + c, 0, static_cast<int32_t>(c));
    target.data<int32_t>()[3] = -100;  // ignored
    for (double eps : {0.0, 0.1}) {
      compare_cross_entropy(logits, target, eps, -100, "[9, " + num(c) + "] eps " + std::to_string(eps));
    }
    Tensor probs = ops::softmax(random_cpu({n, c}, 9200 + c), 1);
    compare_cross_entropy(logits, probs, 0.05, -100, "[9, " + num(c) + "] probabilities");
  }
  // Spatial [N, C, H, W] with index targets (ignore 255) and probabilities.
  Tensor logits = random_cpu({2, 5, 3, 7}, 9300, -4.f, 4.f);
  Tensor target = random_int32_cpu({2, 3, 7}, 9400, 0, 5);
  target.data<int32_t>()[4] = 255;
  compare_cross_entropy(logits, target, 0.1, 255, "[2, 5, 3, 7]");
  compare_cross_entropy(logits, ops::softmax(random_cpu({2, 5, 3, 7}, 9500), 1), 0.0, -100, "[2, 5, 3, 7] probs");
  // Every row ignored: mean is NaN (0 / 0), as on the CPU; a row of -inf logits that is ignored stays NaN-free.
  Tensor all_ignored = host_ints({-100, -100}, {2});
  Tensor minf = host_floats({-kInf, -kInf, -kInf, 1.f, 2.f, 3.f}, {2, 3});
  compare_cross_entropy(minf, all_ignored, 0.0, -100, "all ignored");
  // A target out of range: INVALID_ARGUMENT with the CPU's message.
  Tensor bad = host_ints({0, 3}, {2});
  expect_same_error("crossEntropy target out of range",
                    [&] { ops::cross_entropy(minf, bad, 0, -100, ops::Reduction::Mean); },
                    [&] { ops::cross_entropy(on_gpu(minf), on_gpu(bad), 0, -100, ops::Reduction::Mean); });
}

JOULE_GPU_CHECK(check_layer_norm, "layerNorm forward/backward: widths 1..4097, with and without weight/bias") {
  for (int64_t d : kLengths) {
    Tensor x = random_cpu({3, 5, d}, 10000 + d, -3.f, 5.f);
    Tensor gamma = random_cpu({d}, 10100 + d, 0.5f, 1.5f), beta = random_cpu({d}, 10200 + d);
    Tensor dy = random_cpu({3, 5, d}, 10300 + d);
    for (int variant = 0; variant < 3; ++variant) {
      std::optional<Tensor> g, b, gg, bg;
      if (variant >= 1) {
        g = gamma;
        gg = on_gpu(gamma);
      }
      if (variant == 2) {
        b = beta;
        bg = on_gpu(beta);
      }
      const std::string s = "[3, 5, " + num(d) + "] variant " + num(variant);
      auto want = ops::layer_norm(x, g, b, 1e-5);
      auto got = ops::layer_norm(on_gpu(x), gg, bg, 1e-5);
      expect_close(got[0], want[0], 1e-4, 1e-5, s + " y");
      expect_close(got[1], want[1], 1e-5, 1e-6, s + " mean");
      expect_close(got[2], want[2], 1e-4, 1e-6, s + " rstd");
      auto gw = ops::layer_norm_backward(dy, x, want[1], want[2], g, true, true);
      auto gd = ops::layer_norm_backward(on_gpu(dy), on_gpu(x), got[1], got[2], gg, true, true);
      expect_close(*gd.dx, *gw.dx, 1e-3, 1e-4, s + " dx");
      expect_close(*gd.dgamma, *gw.dgamma, 1e-4, 1e-4, s + " dgamma");
      expect_close(*gd.dbeta, *gw.dbeta, 1e-5, 1e-5, s + " dbeta");
    }
  }
  Tensor tall = random_cpu({5000, 24}, 10400);  // many rows: the chunked dgamma/dbeta path
  Tensor dy = random_cpu({5000, 24}, 10500);
  auto want = ops::layer_norm(tall, std::nullopt, std::nullopt, 1e-5);
  auto got = ops::layer_norm(on_gpu(tall), std::nullopt, std::nullopt, 1e-5);
  auto gw = ops::layer_norm_backward(dy, tall, want[1], want[2], std::nullopt, false, true);
  auto gd = ops::layer_norm_backward(on_gpu(dy), on_gpu(tall), got[1], got[2], std::nullopt, false, true);
  expect_close(*gd.dgamma, *gw.dgamma, 1e-4, 1e-3, "[5000, 24] dgamma");
  expect_close(*gd.dbeta, *gw.dbeta, 1e-4, 1e-3, "[5000, 24] dbeta");
}

// ---- random numbers: the same Philox stream on both sides ----

JOULE_GPU_CHECK(check_random, "rand/randn/randint/bernoulli on the device: the CPU's numbers for the same seed") {
  for (int64_t n : {int64_t{1}, int64_t{3}, int64_t{4097}, int64_t{100003}}) {
    const Shape shape{n};
    ops::manual_seed(1234);
    ops::rand({5}, Device::cpu());  // an offset that is not zero
    const ops::RngState start = ops::rng_state();
    Tensor want_u = ops::rand(shape, Device::cpu());
    Tensor want_n = ops::randn(shape, Device::cpu());
    Tensor want_i = ops::randint(-7, 1000, shape, Device::cpu());
    Tensor want_b = ops::bernoulli_mask(shape, 0.3, Device::cpu());
    const ops::RngState end = ops::rng_state();
    ops::set_rng_state(start);
    Tensor got_u = ops::rand(shape, target_device());
    Tensor got_n = ops::randn(shape, target_device());
    Tensor got_i = ops::randint(-7, 1000, shape, target_device());
    Tensor got_b = ops::bernoulli_mask(shape, 0.3, target_device());
    const ops::RngState after = ops::rng_state();
    JOULE_CHECK(after.seed == end.seed && after.offset == end.offset, Code::Internal,
                "random: the device draws advanced the generator to ", after.offset, ", the CPU's to ", end.offset);
    const std::string s = " of " + num(n);
    expect_close(got_u, want_u, 0, 0, "rand" + s);
    expect_close(got_n, want_n, 0, 1e-6, "randn" + s);
    expect_close(got_i, want_i, 0, 0, "randint" + s);
    expect_close(got_b, want_b, 0, 0, "bernoulli" + s);
  }
}

// ---- optimizers ----

std::vector<Tensor> clones_on_gpu(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(on_gpu(t));
  return out;
}

std::vector<Tensor> random_list(uint64_t seed, float lo = -1.f, float hi = 1.f) {
  std::vector<Tensor> out;
  const Shape shapes[] = {{1}, {3}, {17, 33}, {4097}, {100003}};
  for (const Shape& s : shapes) out.push_back(random_cpu(s, seed++, lo, hi));
  return out;
}

void expect_lists(const std::vector<Tensor>& got, const std::vector<Tensor>& want, const std::string& what) {
  for (size_t i = 0; i < want.size(); ++i) expect_close(got[i], want[i], 1e-6, 1e-7, what + " tensor " + num(i));
}

JOULE_GPU_CHECK(check_optimizers, "sgdStep/adamStep (every option), gradNorm, scaleInplace on lists of 5 tensors") {
  struct Sgd {
    double momentum, dampening, wd;
    bool nesterov, maximize;
  };
  for (Sgd o : {Sgd{0, 0, 0, false, false}, Sgd{0, 0, 0.01, false, true}, Sgd{0.9, 0, 0, false, false},
                Sgd{0.9, 0.1, 0.01, false, false}, Sgd{0.9, 0, 0.01, true, true}}) {
    std::vector<Tensor> p = random_list(11000), g = random_list(11100), buf = random_list(11200);
    std::vector<Tensor> pg = clones_on_gpu(p), gg = clones_on_gpu(g), bg = clones_on_gpu(buf);
    if (o.momentum == 0) buf.clear(), bg.clear();
    const std::string s = "sgd momentum " + std::to_string(o.momentum) + (o.nesterov ? " nesterov" : "");
    for (int step = 0; step < 3; ++step) {  // the first step initialises the buffers, the next ones use them
      std::vector<uint8_t> init(p.size(), step > 0 ? 1 : 0);
      ops::sgd_step(p, g, buf, buf.empty() ? std::vector<uint8_t>{} : init, 0.05, o.momentum, o.dampening, o.wd,
                    o.nesterov, o.maximize);
      ops::sgd_step(pg, gg, bg, bg.empty() ? std::vector<uint8_t>{} : init, 0.05, o.momentum, o.dampening, o.wd,
                    o.nesterov, o.maximize);
    }
    expect_lists(pg, p, s + " params");
    if (!buf.empty()) expect_lists(bg, buf, s + " buffers");
  }
  struct Adam {
    double wd;
    bool decoupled, amsgrad, maximize;
  };
  for (Adam o : {Adam{0, false, false, false}, Adam{0.01, false, false, true}, Adam{0.1, true, false, false},
                 Adam{0.1, true, true, false}}) {
    std::vector<Tensor> p = random_list(12000), g = random_list(12100);
    std::vector<Tensor> m, v, vmax;
    for (const Tensor& t : p) {
      m.push_back(ops::full(t.shape, 0, DType::Float32, Device::cpu()));
      v.push_back(ops::full(t.shape, 0, DType::Float32, Device::cpu()));
      if (o.amsgrad) vmax.push_back(ops::full(t.shape, 0, DType::Float32, Device::cpu()));
    }
    std::vector<Tensor> pg = clones_on_gpu(p), gg = clones_on_gpu(g), mg = clones_on_gpu(m), vg = clones_on_gpu(v),
                        vmaxg = clones_on_gpu(vmax);
    const std::string s = std::string(o.decoupled ? "adamw" : "adam") + (o.amsgrad ? " amsgrad" : "") +
                          (o.maximize ? " maximize" : "");
    for (int step = 1; step <= 3; ++step) {
      std::vector<double> steps(p.size(), step);
      steps[0] = step + 5;  // per-parameter step counts
      ops::adam_step(p, g, m, v, vmax, steps, 1e-2, 0.9, 0.999, 1e-8, o.wd, o.decoupled, o.amsgrad, o.maximize);
      ops::adam_step(pg, gg, mg, vg, vmaxg, steps, 1e-2, 0.9, 0.999, 1e-8, o.wd, o.decoupled, o.amsgrad, o.maximize);
    }
    expect_lists(pg, p, s + " params");
    expect_lists(mg, m, s + " first moments");
    expect_lists(vg, v, s + " second moments");
    if (o.amsgrad) expect_lists(vmaxg, vmax, s + " max second moments");
  }
  std::vector<Tensor> t = random_list(13000, -3.f, 3.f);
  std::vector<Tensor> tg = clones_on_gpu(t);
  for (double p : {2.0, 1.0, 3.0, static_cast<double>(kInf)}) {
    const double want = ops::total_norm(t, p), got = ops::total_norm(tg, p);
    JOULE_CHECK(std::fabs(got - want) <= 1e-5 * std::fabs(want), Code::Internal, "gradNorm p=", p, ": got ", got,
                ", want ", want);
  }
  t[2].data<float>()[7] = kNaN;
  tg = clones_on_gpu(t);
  // (The CPU's inf-norm loses a NaN when it merges its workers' maxima, so only the device is held to it.)
  JOULE_CHECK((dry_run() || std::isnan(ops::total_norm(tg, kInf))) && std::isnan(ops::total_norm(tg, 2)),
              Code::Internal, "gradNorm: a NaN element must give NaN");
  ops::scale_inplace(t, 0.37);
  ops::scale_inplace(tg, 0.37);
  expect_lists(tg, t, "scaleInplace");
  if (!dry_run()) {
    std::vector<Tensor> mixed = {tg[0], t[1]};
    expect_error(Code::Device, "sgdStep with tensors on two devices",
                 [&] { ops::sgd_step(mixed, mixed, {}, {}, 0.1, 0, 0, 0, false, false); });
  }
}

}  // namespace
}  // namespace joule::cuda_tools
