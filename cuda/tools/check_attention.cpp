// GPU checks of the fused attention (cuda/attention.cu): forward and backward against the CPU kernels on awkward
// sizes (odd lengths and head sizes, Tq != Tk with the causal diagonal aligned at the end, causal rows that see no
// key, empty tensors), q/k/v as strided views of one packed QKV projection with gradients written into a packed
// buffer, more (b, h) pairs than one grid dimension holds, determinism and the error paths.
//
// Tolerances. Both sides compute the same fp32 sums in different orders (the CPU in vector lanes and key blocks of
// 128, the GPU over warp lanes and shared-memory tiles), so they differ by rounding only. With eps = 2^-24 ~ 6e-8:
//  - scores s = scale q.k: D <= 256 products; random-walk rounding ~ sqrt(D) eps sum|q_d k_d| scale ~ 2e-5 absolute
//    at D = 256 with q, k in [-2, 2); p = exp(s - lse) inherits that as a relative error, and exp itself (the CPU's
//    polynomial, CUDA's __expf / expf) adds ~1e-6.
//  - out / lse: convex combinations of v in [-1, 1) and log-sums of O(1) values: rtol 1e-4, atol 2e-5 (the existing
//    forward check's numbers) leave a margin of ~5x over the score error.
//  - gradients: dV_j = sum_i p_ij dO_i, dK_j = scale sum_i ds_ij q_i, dQ_i = scale sum_j ds_ij k_j with
//    ds = p (dO.v - delta) are sums of up to T = 129 (1000 in one case) terms of random sign, each carrying the
//    ~3e-5 relative error of p and of dO.v (another D-term dot product); the result is ~1e-5..5e-5 of the tensor's
//    typical magnitude. Elementwise we allow rtol 1e-4 plus atol 2e-4 * max|want| (elements that cancel to near zero
//    keep the absolute error of their neighbours), and the relative L2 error over the tensor must stay under 5e-5.
//  - gradients that vanish in exact arithmetic: with one visible key (Tk = 1, or a causal row's first key) p = 1 and
//    dp = delta, so dQ and dK are pure rounding noise on both sides, of size ~ sqrt(D) eps |dp| scale |k|. Every
//    gradient therefore also gets an absolute floor 1e-6 * scale * D * max|dO| * max|v| * max(max|q|, max|k|)
//    (eps sqrt(D) <= 1e-6 times the largest possible |dp| = D max|dO| max|v|, carried by scale and |q| or |k|), and
//    the L2 check applies only above 100x that floor. A host transliteration of the kernels (same loops, warps
//    and lanes unrolled) met all of this against the CPU with the same inputs' shapes.
// A wrong index is far outside that: dropping or adding one key (e.g. the causal diagonal off by one) moves an
// element by one term p_ij ~ 1 / (visible keys) >= 1e-3 of its size, dropping a query row by ~1/sqrt(T) >= 0.03.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "cuda/tools/check.h"
#include "ops/attention.h"
#include "ops/ops.h"

namespace joule::cuda_tools {
namespace {

const double kDefaultScale = std::numeric_limits<double>::quiet_NaN();  // 1 / sqrt(D)

Tensor on_gpu(const Tensor& t) { return ops::to_device(t, target_device()); }

double max_abs(const Tensor& t) {
  const Tensor h = ops::contiguous(ops::to_device(t, Device::cpu()));
  const float* p = h.data<float>();
  double m = 0;
  for (int64_t i = 0; i < h.numel(); ++i)
    if (std::isfinite(p[i])) m = std::max(m, static_cast<double>(std::fabs(p[i])));
  return m;
}

void expect_forward_close(const std::vector<Tensor>& got, const std::vector<Tensor>& want, const std::string& what) {
  expect_close(got[0], want[0], 1e-4, 2e-5, what + ": out");
  expect_close(got[1], want[1], 1e-4, 2e-5, what + ": lse");  // -inf (rows that see no key) must match exactly
}

// `floor`: the absolute rounding noise of a gradient that vanishes in exact arithmetic (see the top of the file).
void expect_grad_close(const Tensor& got, const Tensor& want, double floor, const std::string& what) {
  const double largest = max_abs(want);
  expect_close(got, want, 1e-4, 2e-4 * largest + floor, what);
  if (largest > 100 * floor) expect_rel_l2(got, want, 5e-5, what);
}

double noise_floor(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout, double scale) {
  const int64_t D = q.shape[3];
  if (std::isnan(scale)) scale = 1.0 / std::sqrt(static_cast<double>(D));
  return 1e-6 * std::fabs(scale) * static_cast<double>(D) * max_abs(dout) * max_abs(v) *
         std::max(max_abs(q), max_abs(k));
}

struct Case {
  int64_t B, H, Tq, Tk, D;
  bool causal;
  double scale = kDefaultScale;
};

std::string describe(const Case& c) {
  return "attention B" + std::to_string(c.B) + " H" + std::to_string(c.H) + " Tq" + std::to_string(c.Tq) + " Tk" +
         std::to_string(c.Tk) + " D" + std::to_string(c.D) + (c.causal ? " causal" : "");
}

// Forward and backward of one case on the device against the CPU. The device backward gets the CPU's saved out and
// lse (so that a forward error cannot hide or fake a backward one); the device forward is compared on its own.
void run_case(const Case& c, uint64_t seed) {
  const std::string what = describe(c);
  Tensor q = random_cpu({c.B, c.H, c.Tq, c.D}, seed + 1, -2.f, 2.f);
  Tensor k = random_cpu({c.B, c.H, c.Tk, c.D}, seed + 2, -2.f, 2.f);
  Tensor v = random_cpu({c.B, c.H, c.Tk, c.D}, seed + 3);
  Tensor dout = random_cpu({c.B, c.H, c.Tq, c.D}, seed + 4);
  Tensor gq = on_gpu(q), gk = on_gpu(k), gv = on_gpu(v);
  std::vector<Tensor> want = ops::attention_forward(q, k, v, c.causal, c.scale);
  std::vector<Tensor> got = ops::attention_forward(gq, gk, gv, c.causal, c.scale);
  expect_forward_close(got, want, what);
  ops::AttentionGrads gw =
      ops::attention_backward(dout, q, k, v, want[0], want[1], c.causal, c.scale, std::nullopt, std::nullopt, std::nullopt);
  ops::AttentionGrads gg = ops::attention_backward(on_gpu(dout), gq, gk, gv, on_gpu(want[0]), on_gpu(want[1]), c.causal,
                                                   c.scale, std::nullopt, std::nullopt, std::nullopt);
  const double floor = noise_floor(q, k, v, dout, c.scale);
  expect_grad_close(*gg.dq, *gw.dq, floor, what + ": dq");
  expect_grad_close(*gg.dk, *gw.dk, floor, what + ": dk");
  expect_grad_close(*gg.dv, *gw.dv, floor, what + ": dv");
}

const int64_t kLengths[] = {1, 3, 17, 33, 65, 127, 129};
const int64_t kHeadDims[] = {1, 8, 31, 64, 100, 128, 256};

}  // namespace

// Every (Tq, Tk) pair of the awkward lengths, causal and not, at two head sizes: 31 leaves most lanes of the one
// register slot idle, 64 fills two. Tq > Tk with causal has rows that see no key (lse -inf, dq 0).
JOULE_GPU_CHECK(check_attention_lengths, "attention: forward + backward, every Tq x Tk of 1..129, causal and not") {
  uint64_t seed = 10000;
  for (int64_t D : {31, 64})
    for (int64_t Tq : kLengths)
      for (int64_t Tk : kLengths)
        for (bool causal : {false, true}) run_case({1, 2, Tq, Tk, D, causal}, seed += 10);
}

// Every head size (1 .. 256: one to eight register slots per lane, partial last slots, the smallest shared-memory
// tiles) at a few shapes, with several (b, h) pairs.
JOULE_GPU_CHECK(check_attention_head_dims, "attention: forward + backward, head sizes 1..256, B and H > 1") {
  const int64_t shapes[][2] = {{1, 1}, {17, 33}, {33, 17}, {129, 127}, {65, 129}, {3, 1000}};
  uint64_t seed = 20000;
  for (int64_t D : kHeadDims)
    for (const auto& s : shapes)
      for (bool causal : {false, true}) run_case({2, 3, s[0], s[1], D, causal}, seed += 10);
  // An explicit scale (the model may pass one) and a large one (sharper softmax: p near one-hot).
  run_case({2, 2, 40, 40, 48, true, 0.3}, seed += 10);
  run_case({1, 2, 33, 65, 16, false, 2.0}, seed += 10);
}

// Empty extents: Tq = 0 (dK and dV exist and are zeros), Tk = 0 (out and dQ zeros, lse -inf), B = 0.
JOULE_GPU_CHECK(check_attention_empty, "attention: forward + backward with Tq = 0, Tk = 0, B = 0") {
  run_case({2, 3, 0, 7, 16, false}, 30000);
  run_case({2, 3, 0, 7, 16, true}, 30010);
  run_case({1, 2, 5, 0, 16, false}, 30020);
  run_case({1, 2, 5, 0, 16, true}, 30030);
  run_case({0, 2, 5, 5, 16, true}, 30040);
}

// More (b, h) pairs than gridDim.y (65535) takes: the launches are split; pairs past the split must be right too.
JOULE_GPU_CHECK(check_attention_many_heads, "attention: forward + backward with B * H > 65535") {
  run_case({2, 32771, 3, 5, 4, true}, 40000);
}

// q, k, v as strided views of one packed [B, T, 3, H, D] projection, as the GPT's fused QKV linear produces them;
// dout as the [B, T, H, D] buffer the merged heads come back as; dq/dk/dv written into one packed [B, T, 3, H, D]
// gradient (the _into arguments, which overwrite the sentinel values the buffer starts with).
JOULE_GPU_CHECK(check_attention_packed_qkv, "attention: packed QKV views, gradients into a packed buffer") {
  const int64_t B = 2, T = 37, H = 4, D = 48;
  auto part = [](const Tensor& t, int i) { return ops::transpose(ops::select(t, 2, i), 1, 2); };  // [B, H, T, D]
  for (bool causal : {false, true}) {
    const std::string what = std::string("packed qkv") + (causal ? " causal" : "");
    Tensor qkv = random_cpu({B, T, 3, H, D}, causal ? 50 : 51, -2.f, 2.f);
    Tensor dout = ops::permute(random_cpu({B, T, H, D}, causal ? 52 : 53), {0, 2, 1, 3});
    Tensor gqkv = on_gpu(qkv);
    Tensor gdout = ops::permute(on_gpu(ops::permute(dout, {0, 2, 1, 3})), {0, 2, 1, 3});
    std::vector<Tensor> want = ops::attention_forward(part(qkv, 0), part(qkv, 1), part(qkv, 2), causal, kDefaultScale);
    std::vector<Tensor> got =
        ops::attention_forward(part(gqkv, 0), part(gqkv, 1), part(gqkv, 2), causal, kDefaultScale);
    expect_forward_close(got, want, what);
    // Both gradient buffers start from the same sentinels in [100, 101); every element is overwritten.
    Tensor dqkv = random_cpu({B, T, 3, H, D}, 54, 100.f, 101.f);
    Tensor gdqkv = on_gpu(dqkv);
    ops::AttentionGrads none_cpu = ops::attention_backward(dout, part(qkv, 0), part(qkv, 1), part(qkv, 2), want[0],
                                                           want[1], causal, kDefaultScale, part(dqkv, 0),
                                                           part(dqkv, 1), part(dqkv, 2));
    ops::AttentionGrads none_gpu = ops::attention_backward(gdout, part(gqkv, 0), part(gqkv, 1), part(gqkv, 2),
                                                           on_gpu(want[0]), on_gpu(want[1]), causal, kDefaultScale,
                                                           part(gdqkv, 0), part(gdqkv, 1), part(gdqkv, 2));
    JOULE_CHECK(!none_cpu.dq && !none_cpu.dk && !none_cpu.dv && !none_gpu.dq && !none_gpu.dk && !none_gpu.dv,
                Code::Internal, what, ": gradients written into given tensors must not be returned");
    const double floor = noise_floor(part(qkv, 0), part(qkv, 1), part(qkv, 2), dout, kDefaultScale);
    expect_grad_close(part(gdqkv, 0), part(dqkv, 0), floor, what + ": dq (into)");
    expect_grad_close(part(gdqkv, 1), part(dqkv, 1), floor, what + ": dk (into)");
    expect_grad_close(part(gdqkv, 2), part(dqkv, 2), floor, what + ": dv (into)");
    // And the device's own forward state feeding its backward (the path training takes).
    ops::AttentionGrads own = ops::attention_backward(gdout, part(gqkv, 0), part(gqkv, 1), part(gqkv, 2), got[0],
                                                      got[1], causal, kDefaultScale, std::nullopt, std::nullopt,
                                                      std::nullopt);
    expect_grad_close(*own.dq, part(dqkv, 0), floor, what + ": dq from the device's forward");
    expect_grad_close(*own.dk, part(dqkv, 1), floor, what + ": dk from the device's forward");
    expect_grad_close(*own.dv, part(dqkv, 2), floor, what + ": dv from the device's forward");
  }
}

// No atomics: two runs give the same bits.
JOULE_GPU_CHECK(check_attention_deterministic, "attention: backward is bitwise deterministic") {
  const int64_t B = 2, H = 3, T = 300, D = 64;
  Tensor q = on_gpu(random_cpu({B, H, T, D}, 60, -2.f, 2.f)), k = on_gpu(random_cpu({B, H, T, D}, 61, -2.f, 2.f));
  Tensor v = on_gpu(random_cpu({B, H, T, D}, 62)), dout = on_gpu(random_cpu({B, H, T, D}, 63));
  std::vector<Tensor> f = ops::attention_forward(q, k, v, true, kDefaultScale);
  ops::AttentionGrads a =
      ops::attention_backward(dout, q, k, v, f[0], f[1], true, kDefaultScale, std::nullopt, std::nullopt, std::nullopt);
  ops::AttentionGrads b =
      ops::attention_backward(dout, q, k, v, f[0], f[1], true, kDefaultScale, std::nullopt, std::nullopt, std::nullopt);
  expect_close(*a.dq, ops::to_device(*b.dq, Device::cpu()), 0, 0, "dq twice");
  expect_close(*a.dk, ops::to_device(*b.dk, Device::cpu()), 0, 0, "dk twice");
  expect_close(*a.dv, ops::to_device(*b.dv, Device::cpu()), 0, 0, "dv twice");
}

// Mixed devices are refused before any kernel runs (DEVICE), and a head size over 256 is refused on the device as on
// the CPU (INVALID_ARGUMENT).
JOULE_GPU_CHECK(check_attention_errors, "attention: backward error paths") {
  if (dry_run()) return;  // everything is on the CPU: there is no second device to mix
  Tensor q = random_cpu({1, 1, 4, 8}, 70);
  Tensor gq = on_gpu(q);
  std::vector<Tensor> f = ops::attention_forward(gq, gq, gq, false, kDefaultScale);
  expect_error(Code::Device, "backward with dout on the CPU", [&] {
    ops::attention_backward(q, gq, gq, gq, f[0], f[1], false, kDefaultScale, std::nullopt, std::nullopt, std::nullopt);
  });
  expect_error(Code::Device, "backward into a CPU tensor", [&] {
    ops::attention_backward(on_gpu(q), gq, gq, gq, f[0], f[1], false, kDefaultScale, ops::clone(q), std::nullopt,
                            std::nullopt);
  });
  Tensor big = on_gpu(random_cpu({1, 1, 2, 257}, 71));
  expect_error(Code::InvalidArgument, "backward with D = 257", [&] {
    ops::attention_backward(big, big, big, big, big, on_gpu(random_cpu({1, 1, 2}, 72)), false, kDefaultScale,
                            std::nullopt, std::nullopt, std::nullopt);
  });
}

}  // namespace joule::cuda_tools
