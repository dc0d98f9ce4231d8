// GPU checks of the CUDA runtime and the first kernels: copies, the caching allocator, the elementwise family, fill,
// strided copies, the attention forward, and the error paths. Each compares with the CPU on awkward sizes.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/storage.h"
#include "cuda/backend.h"
#include "cuda/tools/check.h"
#include "ops/attention.h"
#include "ops/ops.h"

namespace joule::cuda_tools {
namespace {

// cuda:0, or the CPU in a dry run (joule_cuda_check --cpu).
Tensor on_gpu(const Tensor& t) { return ops::to_device(t, target_device()); }

std::string shape_name(const Shape& s) { return shape_str(s); }

// Puts NaN, +inf and -inf at a few places of a CPU float32 tensor, so that NaN/inf handling is compared too.
void plant_specials(const Tensor& t) {
  float* p = t.data<float>();
  const int64_t n = t.numel();
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity()};
  for (int i = 0; i < 3 && n > 3 * (i + 1); ++i) p[(n / 3) * i + 1] = specials[i];
}

int64_t cuda_stat(int64_t DeviceMemory::*field) {
  for (auto& m : memory_stats()) {
    if (m.device == "cuda:0") return m.*field;
  }
  return 0;
}

// ---- copies ----

JOULE_GPU_CHECK(check_copy_roundtrip, "core: host -> device -> host copies of 0, 1, 7, 2^20+3 elements, every dtype") {
  const int64_t sizes[] = {0, 1, 7, (int64_t{1} << 20) + 3};
  for (int64_t n : sizes) {
    Tensor x = random_cpu({n}, 100 + n, -5.f, 5.f);
    expect_close(ops::to_device(on_gpu(x), Device::cpu()), x, 0, 0, "float32 roundtrip of " + std::to_string(n));
    for (DType dt : {DType::Int32, DType::Int8, DType::UInt8}) {
      Tensor xi = ops::cast(x, dt);
      Tensor back = ops::to_device(on_gpu(xi), Device::cpu());
      expect_close(back, xi, 0, 0, std::string(dtype_name(dt)) + " roundtrip of " + std::to_string(n));
    }
    // to_host (what data() uses) straight from the device
    std::vector<float> host(static_cast<size_t>(n));
    ops::to_host(on_gpu(x), host.data(), host.size() * sizeof(float));
    for (int64_t i = 0; i < n; ++i) {
      JOULE_CHECK(host[i] == x.data<float>()[i], Code::Internal, "to_host of ", n, " floats: element ", i, " is ",
                  host[i], ", expected ", x.data<float>()[i]);
    }
  }
}

JOULE_GPU_CHECK(check_copy_on_device, "core: clone on the device, non-contiguous device tensors back to the host") {
  Tensor x = random_cpu({33, 65}, 1);
  Tensor g = on_gpu(x);
  Tensor c = ops::clone(g);
  JOULE_CHECK(c.raw() != g.raw(), Code::Internal, "clone returned the same memory");
  expect_close(c, x, 0, 0, "clone of a [33, 65] device tensor");
  // to_device of a transposed device view makes it contiguous first (a strided copy on the GPU).
  expect_close(ops::to_device(ops::transpose(g, 0, 1), Device::cpu()), ops::contiguous(ops::transpose(x, 0, 1)), 0, 0,
               "a transposed device view copied to the host");
  // The same device: to() returns the tensor itself.
  Tensor same = ops::to_device(g, target_device());
  JOULE_CHECK(same.raw() == g.raw(), Code::Internal, "to('cuda:0') of a cuda:0 tensor copied it");
}

// ---- the caching allocator ----

JOULE_GPU_CHECK(check_allocator_cache, "core: caching allocator reuses freed blocks and memory() reports them") {
  if (dry_run()) return;  // the CUDA allocator's own bookkeeping
  release_cached_memory();
  JOULE_CHECK(cuda::cached_bytes(0) == 0, Code::Internal, "after release_cached the cache holds ",
              cuda::cached_bytes(0), " bytes");
  const int64_t bytes_before = cuda_stat(&DeviceMemory::bytes);
  const size_t sizes[] = {4000, (size_t{3} << 20) + 12};  // below and above the 1 MiB granularity switch
  for (size_t nbytes : sizes) {
    const int64_t n = static_cast<int64_t>(nbytes / 4);
    void* first = nullptr;
    {
      Tensor t = empty({n}, DType::Float32, target_device());
      first = t.raw();
      JOULE_CHECK(cuda_stat(&DeviceMemory::bytes) == bytes_before + n * 4, Code::Internal,
                  "memory(): cuda:0 bytes while a ", n * 4, "-byte tensor lives: ", cuda_stat(&DeviceMemory::bytes),
                  ", expected ", bytes_before + n * 4);
    }
    JOULE_CHECK(cuda_stat(&DeviceMemory::bytes) == bytes_before, Code::Internal,
                "memory(): cuda:0 bytes after the tensor was freed: ", cuda_stat(&DeviceMemory::bytes), ", expected ",
                bytes_before);
    const size_t cached = cuda::cached_bytes(0);
    JOULE_CHECK(cached >= nbytes, Code::Internal, "a freed ", nbytes, "-byte block is not cached (cache holds ", cached,
                " bytes)");
    JOULE_CHECK(cuda_stat(&DeviceMemory::cached_bytes) == static_cast<int64_t>(cached), Code::Internal,
                "memory() reports ", cuda_stat(&DeviceMemory::cached_bytes), " cached bytes, the allocator ", cached);
    Tensor again = empty({n}, DType::Float32, target_device());
    JOULE_CHECK(again.raw() == first, Code::Internal, "the same size allocated again did not reuse the cached block");
    JOULE_CHECK(cuda::cached_bytes(0) < cached, Code::Internal, "the reused block is still counted as cached");
    // The reused block works: fill it and read it back.
    ops::fill(again, 1.5);
    expect_close(again, ops::full({n}, 1.5, DType::Float32, Device::cpu()), 0, 0, "a reused block after fill");
  }
  release_cached_memory();
  JOULE_CHECK(cuda::cached_bytes(0) == 0, Code::Internal, "release_cached left ", cuda::cached_bytes(0), " bytes");
}

// ---- elementwise ----

struct BinaryCase {
  Shape a, b;
};

JOULE_GPU_CHECK(check_binary_broadcast, "elementwise: binary ops with broadcasting vs CPU (awkward shapes, NaN/inf)") {
  const BinaryCase cases[] = {
      {{33, 7}, {7}},        {{4, 1, 9}, {1, 5, 1}}, {{257, 3}, {257, 1}}, {{1}, {(1 << 20) + 3}},
      {{0, 5}, {5}},         {{}, {}},               {{2, 3, 4, 5}, {3, 1, 5}}, {{1000003}, {1000003}},
      {{3, 1, 1, 1, 2}, {1, 2, 2, 2, 1}}};
  const char* names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum"};
  uint64_t seed = 10;
  for (const auto& c : cases) {
    for (const char* name : names) {
      const ops::BinaryOp op = ops::parse_binary(name);
      const bool pow = op == ops::BinaryOp::Pow;
      // pow: a positive base, so that the result is a number (a negative base with a fractional power is NaN).
      Tensor a = random_cpu(c.a, ++seed, pow ? 0.1f : -3.f, 3.f);
      Tensor b = random_cpu(c.b, ++seed, pow ? -2.f : -3.f, pow ? 2.f : 3.f);
      if (!pow) plant_specials(a);
      Tensor want = ops::binary(op, a, b);
      Tensor got = ops::binary(op, on_gpu(a), on_gpu(b));
      JOULE_CHECK(got.device() == target_device(), Code::Internal, name, ": the result is on ", got.device().name());
      expect_close(got, want, pow ? 2e-6 : 1e-6, 1e-6,
                   std::string(name) + " " + shape_name(c.a) + " with " + shape_name(c.b));
    }
  }
}

JOULE_GPU_CHECK(check_binary_views_inplace, "elementwise: binary ops on transposed views, scalars and in place") {
  Tensor a = random_cpu({17, 29}, 1), b = random_cpu({29, 17}, 2);
  Tensor ga = on_gpu(a), gb = on_gpu(b);
  using ops::BinaryOp;
  expect_close(ops::binary(BinaryOp::Mul, ga, ops::transpose(gb, 0, 1)),
               ops::binary(BinaryOp::Mul, a, ops::transpose(b, 0, 1)), 1e-6, 1e-7, "a * b.t()");
  expect_close(ops::binary(BinaryOp::Sub, ops::transpose(ga, 0, 1), gb),
               ops::binary(BinaryOp::Sub, ops::transpose(a, 0, 1), b), 1e-6, 1e-7, "a.t() - b");
  expect_close(ops::binary_scalar(BinaryOp::Mul, ga, 2.5, false), ops::binary_scalar(BinaryOp::Mul, a, 2.5, false),
               1e-6, 1e-7, "a * 2.5");
  expect_close(ops::binary_scalar(BinaryOp::Sub, ga, 2.5, true), ops::binary_scalar(BinaryOp::Sub, a, 2.5, true), 1e-6,
               1e-7, "2.5 - a");
  expect_close(ops::binary_scalar(BinaryOp::Div, ga, 3.0, true), ops::binary_scalar(BinaryOp::Div, a, 3.0, true), 1e-6,
               1e-7, "3 / a");
  // In place, with a broadcast right-hand side and with a strided target (every other column).
  Tensor row = random_cpu({29}, 3);
  Tensor ca = ops::clone(a), cga = ops::clone(ga);
  ops::binary_inplace(BinaryOp::Add, ca, row);
  ops::binary_inplace(BinaryOp::Add, cga, on_gpu(row));
  expect_close(cga, ca, 1e-6, 1e-7, "a += row (broadcast)");
  ops::binary_scalar_inplace(BinaryOp::Mul, ops::slice(ca, 1, 1, 29, 2), -0.5);
  ops::binary_scalar_inplace(BinaryOp::Mul, ops::slice(cga, 1, 1, 29, 2), -0.5);
  expect_close(cga, ca, 1e-6, 1e-7, "a[:, 1::2] *= -0.5 (strided target)");
  // In place where the right-hand side is a view of the target itself (read in full first).
  Tensor sq = random_cpu({19, 19}, 4), gsq = on_gpu(sq);
  ops::binary_inplace(BinaryOp::Add, sq, ops::transpose(sq, 0, 1));
  ops::binary_inplace(BinaryOp::Add, gsq, ops::transpose(gsq, 0, 1));
  expect_close(gsq, sq, 1e-6, 1e-7, "s += s.t() (overlapping)");
}

JOULE_GPU_CHECK(check_unary, "elementwise: every unary op vs CPU (awkward shapes, views, NaN/inf, in place)") {
  const char* names[] = {"neg",    "abs",  "exp",    "log",        "sqrt", "rsqrt", "tanh",  "sigmoid",
                         "relu",   "gelu", "silu",   "sign",       "square", "reciprocal", "sin", "cos",
                         "floor",  "ceil", "round",  "log1p",      "expm1", "erf"};
  const Shape shapes[] = {{1}, {7}, {257, 3}, {(1 << 20) + 3}, {3, 0}, {}, {5, 1, 7}};
  uint64_t seed = 1000;
  for (const Shape& s : shapes) {
    for (const char* name : names) {
      const std::string n = name;
      const bool positive = n == "log" || n == "sqrt" || n == "rsqrt" || n == "log1p";
      Tensor x = random_cpu(s, ++seed, positive ? 0.01f : -4.f, 4.f);
      if (n == "round" || n == "floor" || n == "ceil" || n == "sign") {
        // Halves and integers, where rounding modes differ.
        float* p = x.data<float>();
        for (int64_t i = 0; i < x.numel(); ++i) p[i] = std::round(p[i] * 4.f) / 2.f;
      }
      plant_specials(x);
      const ops::UnaryOp op = ops::parse_unary(name);
      Tensor want = ops::unary(op, x);
      expect_close(ops::unary(op, on_gpu(x)), want, 2e-6, 2e-6, n + " " + shape_name(s));
      if (s.size() == 3) {
        // A non-contiguous input: the transposed view.
        Tensor xt = ops::transpose(x, 0, 2);
        expect_close(ops::unary(op, ops::transpose(on_gpu(x), 0, 2)), ops::unary(op, xt), 2e-6, 2e-6,
                     n + " of a transposed " + shape_name(s));
      }
    }
  }
  Tensor x = random_cpu({65, 33}, 7), g = on_gpu(x);
  ops::unary_inplace(ops::UnaryOp::Tanh, x);
  ops::unary_inplace(ops::UnaryOp::Tanh, g);
  expect_close(g, x, 2e-6, 2e-6, "tanh_ in place");
}

// ---- fill and strided copies ----

JOULE_GPU_CHECK(check_fill, "elementwise: full and fill_ (empty, strided views, 2^27+1000 elements)") {
  const Shape shapes[] = {{0}, {1}, {5, 3}, {(1 << 20) + 3}};
  for (const Shape& s : shapes) {
    expect_close(ops::full(s, 2.5, DType::Float32, target_device()), ops::full(s, 2.5, DType::Float32, Device::cpu()), 0, 0,
                 "full " + shape_name(s));
  }
  // Every other column of a matrix: the rest must stay untouched.
  Tensor x = random_cpu({37, 11}, 5), g = on_gpu(x);
  ops::fill(ops::slice(x, 1, 1, 11, 2), -7.0);
  ops::fill(ops::slice(g, 1, 1, 11, 2), -7.0);
  expect_close(g, x, 0, 0, "fill_ of x[:, 1::2]");
  ops::fill(ops::transpose(x, 0, 1), std::numeric_limits<double>::quiet_NaN());
  ops::fill(ops::transpose(g, 0, 1), std::numeric_limits<double>::quiet_NaN());
  expect_close(g, x, 0, 0, "fill_(NaN) of a transposed view");
  // More elements than one launch's grid covers (the kernels loop over a grid of at most 65535 * 8 blocks of 256).
  const int64_t big = (int64_t{1} << 27) + 1000;
  Tensor gb = ops::full({big}, 0.75, DType::Float32, target_device());
  std::vector<float> host(static_cast<size_t>(big));
  ops::to_host(gb, host.data(), host.size() * sizeof(float));
  for (int64_t i = 0; i < big; ++i) {
    JOULE_CHECK(host[i] == 0.75f, Code::Internal, "full of ", big, " elements: element ", i, " is ", host[i]);
  }
}

JOULE_GPU_CHECK(check_strided_copy, "elementwise: strided copies of transposed, permuted, sliced, expanded views") {
  Tensor a = random_cpu({9, 4}, 1), b = random_cpu({33, 65}, 2), c = random_cpu({2, 3, 4, 5}, 3);
  Tensor ga = on_gpu(a), gb = on_gpu(b), gc = on_gpu(c);
  expect_close(ops::contiguous(ops::transpose(ga, 0, 1)), ops::contiguous(ops::transpose(a, 0, 1)), 0, 0, "[9, 4].t()");
  expect_close(ops::contiguous(ops::transpose(gb, 0, 1)), ops::contiguous(ops::transpose(b, 0, 1)), 0, 0,
               "[33, 65].t()");
  expect_close(ops::contiguous(ops::permute(gc, {3, 1, 0, 2})), ops::contiguous(ops::permute(c, {3, 1, 0, 2})), 0, 0,
               "permute(3, 1, 0, 2)");
  expect_close(ops::contiguous(ops::slice(gb, 0, 1, 30, 3)), ops::contiguous(ops::slice(b, 0, 1, 30, 3)), 0, 0,
               "b[1:30:3]");
  expect_close(ops::contiguous(ops::slice(ops::slice(gb, 1, 5, 64, 7), 0, 2, 33, 1)),
               ops::contiguous(ops::slice(ops::slice(b, 1, 5, 64, 7), 0, 2, 33, 1)), 0, 0, "b[2:, 5:64:7]");
  expect_close(ops::contiguous(ops::select(gc, 2, 3)), ops::contiguous(ops::select(c, 2, 3)), 0, 0, "c[:, :, 3]");
  Tensor row = random_cpu({1, 7}, 4);
  expect_close(ops::contiguous(ops::expand(on_gpu(row), {5, 7})), ops::contiguous(ops::expand(row, {5, 7})), 0, 0,
               "expand [1, 7] -> [5, 7]");
  // copy_ into a strided destination, from a broadcast source.
  Tensor dst = random_cpu({6, 8}, 5), gdst = on_gpu(dst);
  Tensor src = random_cpu({8}, 6);
  ops::copy_into(ops::slice(dst, 0, 0, 6, 2), src);
  ops::copy_into(ops::slice(gdst, 0, 0, 6, 2), on_gpu(src));
  expect_close(gdst, dst, 0, 0, "dst[::2] = row");
  ops::copy_into(ops::transpose(dst, 0, 1), ops::transpose(random_cpu({6, 8}, 7), 0, 1));
  ops::copy_into(ops::transpose(gdst, 0, 1), ops::transpose(on_gpu(random_cpu({6, 8}, 7)), 0, 1));
  expect_close(gdst, dst, 0, 0, "dst.t() = src.t()");
  // reshape of a non-contiguous view has to copy.
  expect_close(ops::reshape(ops::transpose(gb, 0, 1), {65 * 33}), ops::reshape(ops::transpose(b, 0, 1), {65 * 33}), 0,
               0, "reshape of b.t()");
}

// ---- attention ----

struct AttentionCase {
  int64_t B, H, Tq, Tk, D;
  bool causal;
};

JOULE_GPU_CHECK(check_attention_forward, "attention: fused forward (out and log-sum-exp) vs CPU") {
  const AttentionCase cases[] = {
      {1, 1, 1, 1, 1, false},   {2, 3, 17, 17, 64, false}, {2, 3, 17, 17, 64, true},   {1, 2, 5, 33, 128, true},
      {1, 2, 9, 130, 96, false}, {2, 1, 40, 40, 256, true}, {1, 1, 70, 70, 200, false}, {1, 1, 6, 3, 8, true},
      {3, 2, 0, 5, 16, false},  {1, 4, 129, 129, 32, true}, {1, 1, 3, 1000, 33, false}};
  uint64_t seed = 500;
  for (const auto& c : cases) {
    const std::string what = "attention B" + std::to_string(c.B) + " H" + std::to_string(c.H) + " Tq" +
                             std::to_string(c.Tq) + " Tk" + std::to_string(c.Tk) + " D" + std::to_string(c.D) +
                             (c.causal ? " causal" : "");
    Tensor q = random_cpu({c.B, c.H, c.Tq, c.D}, ++seed, -2.f, 2.f);
    Tensor k = random_cpu({c.B, c.H, c.Tk, c.D}, ++seed, -2.f, 2.f);
    Tensor v = random_cpu({c.B, c.H, c.Tk, c.D}, ++seed);
    const double scale = std::numeric_limits<double>::quiet_NaN();
    std::vector<Tensor> want = ops::attention_forward(q, k, v, c.causal, scale);
    std::vector<Tensor> got = ops::attention_forward(on_gpu(q), on_gpu(k), on_gpu(v), c.causal, scale);
    expect_close(got[0], want[0], 1e-4, 2e-5, what + ": out");
    expect_close(got[1], want[1], 1e-4, 2e-5, what + ": lse");
  }
  // q, k, v as views of one [B, T, 3, H, D] projection (strided, as the model makes them), explicit scale.
  Tensor qkv = random_cpu({2, 23, 3, 4, 48}, 900);
  Tensor gqkv = on_gpu(qkv);
  auto part = [](const Tensor& t, int i) { return ops::transpose(ops::select(t, 2, i), 1, 2); };
  std::vector<Tensor> want = ops::attention_forward(part(qkv, 0), part(qkv, 1), part(qkv, 2), true, 0.3);
  std::vector<Tensor> got = ops::attention_forward(part(gqkv, 0), part(gqkv, 1), part(gqkv, 2), true, 0.3);
  expect_close(got[0], want[0], 1e-4, 2e-5, "attention of strided q/k/v views: out");
  expect_close(got[1], want[1], 1e-4, 2e-5, "attention of strided q/k/v views: lse");
}

JOULE_GPU_CHECK(check_attention_kv_cache, "attention: KV-cache step (cache writes + attention) vs CPU") {
  const int64_t B = 2, H = 3, D = 40, cap = 50;
  Tensor ck = random_cpu({B, H, cap, D}, 1), cv = random_cpu({B, H, cap, D}, 2);
  Tensor gck = on_gpu(ck), gcv = on_gpu(cv);
  int64_t length = 0;
  for (int64_t T : {7, 1, 1, 13}) {
    Tensor qkv = random_cpu({B, T, 3 * H * D}, 10 + length);
    Tensor want = ops::attention_qkv_cached(qkv, ck, cv, length, H, true, std::nan(""));
    Tensor got = ops::attention_qkv_cached(on_gpu(qkv), gck, gcv, length, H, true, std::nan(""));
    const std::string what = "KV-cache step at length " + std::to_string(length) + " with " + std::to_string(T) + " new";
    expect_close(got, want, 1e-4, 2e-5, what + ": out");
    expect_close(gck, ck, 0, 0, what + ": cache_k");
    expect_close(gcv, cv, 0, 0, what + ": cache_v");
    length += T;
  }
}

// ---- error paths ----

JOULE_GPU_CHECK(check_error_bad_device, "errors: a device index out of range or mixed devices give DEVICE") {
  if (dry_run()) return;
  const int count = cuda::device_count();
  expect_error(Code::Device, "empty on cuda:" + std::to_string(count),
               [&] { empty({2}, DType::Float32, Device::cuda(count)); });
  expect_error(Code::Device, "to('cuda:99')", [] { ops::to_device(random_cpu({3}, 1), Device::cuda(99)); });
  expect_error(Code::Device, "full on cuda:" + std::to_string(count),
               [&] { ops::full({3}, 1.0, DType::Float32, Device::cuda(count)); });
  expect_error(Code::Device, "check_device(-1)", [] { cuda::check_device(-1); });
  expect_error(Code::Device, "add of a cpu and a cuda tensor",
               [] { ops::binary(ops::BinaryOp::Add, random_cpu({3}, 1), on_gpu(random_cpu({3}, 2))); });
  // Still usable afterwards.
  Tensor x = random_cpu({5}, 3);
  expect_close(on_gpu(x), x, 0, 0, "a copy after the DEVICE errors");
}

JOULE_GPU_CHECK(check_error_out_of_memory, "errors: a 2^50-byte allocation is OUT_OF_MEMORY, then allocation works") {
  if (dry_run()) return;
  const int64_t live_before = cuda_stat(&DeviceMemory::bytes);
  expect_error(Code::OutOfMemory, "empty of 2^48 floats (2^50 bytes) on cuda:0",
               [] { empty({int64_t{1} << 48}, DType::Float32, target_device()); });
  expect_error(Code::OutOfMemory, "device_malloc of 2^50 bytes", [] { cuda::device_malloc(0, size_t{1} << 50); });
  JOULE_CHECK(cuda_stat(&DeviceMemory::bytes) == live_before, Code::Internal,
              "a failed allocation changed memory(): ", cuda_stat(&DeviceMemory::bytes), " bytes, was ", live_before);
  // A normal allocation and a kernel still work (no sticky error was left behind).
  Tensor x = random_cpu({(1 << 20) + 3}, 9);
  Tensor g = on_gpu(x);
  expect_close(ops::unary(ops::UnaryOp::Neg, g), ops::unary(ops::UnaryOp::Neg, x), 0, 0, "neg after the failed allocation");
}

}  // namespace
}  // namespace joule::cuda_tools
