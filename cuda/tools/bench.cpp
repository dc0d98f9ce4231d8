// joule_cuda_bench [dir]: times Joule's CUDA GEMMs (fp32 'highest', TF32, BF16, int8 -> int32) at
// M = N = K in {1024, 2048, 4096, 8192} and one MLP training step (784-4096-4096-10, batch 1024,
// ReLU, cross entropy, SGD momentum 0.9) through the C++ ops on CUDA. Each number is the median
// of >= 10 runs timed with CUDA events on the device's stream, after warm-up runs. Prints a
// markdown table; with a directory argument also writes <dir>/joule_gpu_bench.json:
//   {"device": name, "results": [{"name": "gemm_bf16", "m":.., "n":.., "k":.., "ms":.., "tflops":..}, ...,
//                                {"name": "mlp_step", "batch": 1024, "ms": ..}]}
// (int8 rows carry "tops" instead of "tflops").
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "cuda/backend.h"
#include "cuda/common.h"
#include "kernels/gemm/gemm.h"
#include "kernels/quant/quant.h"
#include "ops/nn.h"
#include "ops/ops.h"
#include "ops/util.h"

namespace {

using joule::DType;
using joule::Device;
using joule::Tensor;
namespace ops = joule::ops;
namespace cuda = joule::cuda;

constexpr int kDevice = 0;
constexpr int kWarmup = 3;
constexpr int kRuns = 10;

struct Result {
  std::string name;
  int64_t m = 0, n = 0, k = 0, batch = 0;
  double ms = 0, rate = 0;  // rate: TFLOP/s (fp32 paths) or TOP/s (int8)
  bool int8 = false;
  std::string error;
};

// Median milliseconds of `fn` over kRuns, each bracketed by events on the device's stream.
double time_ms(const std::function<void()>& fn) {
  cudaStream_t s = cuda::stream(kDevice);
  for (int i = 0; i < kWarmup; ++i) fn();
  cuda::synchronize(kDevice);
  cudaEvent_t start, stop;
  cuda::check_cuda(cudaEventCreate(&start), "cudaEventCreate");
  cuda::check_cuda(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<double> times;
  for (int i = 0; i < kRuns; ++i) {
    cuda::check_cuda(cudaEventRecord(start, s), "cudaEventRecord");
    fn();
    cuda::check_cuda(cudaEventRecord(stop, s), "cudaEventRecord");
    cuda::check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    cuda::check_cuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return (times[kRuns / 2 - 1] + times[kRuns / 2]) / 2;
}

// Deterministic pseudo-random values (a 64-bit LCG), uniform in [lo, hi).
struct Lcg {
  uint64_t state;
  explicit Lcg(uint64_t seed) : state(seed * 6364136223846793005ULL + 1442695040888963407ULL) {}
  float next(float lo, float hi) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * static_cast<float>(state >> 40) / static_cast<float>(1 << 24);
  }
};

Tensor random_host(const joule::Shape& shape, uint64_t seed, float lo, float hi) {
  Tensor t = joule::empty(shape, DType::Float32, Device::cpu());
  Lcg g(seed);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = g.next(lo, hi);
  return t;
}

Tensor random_int8_host(const joule::Shape& shape, uint64_t seed) {
  Tensor t = joule::empty(shape, DType::Int8, Device::cpu());
  Lcg g(seed);
  int8_t* p = t.data<int8_t>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<int8_t>(static_cast<int>(g.next(0, 255)) - 127);
  return t;
}

Tensor on_gpu(const Tensor& t) { return ops::to_device(t, Device::cuda(kDevice)); }

const int64_t kSizes[] = {1024, 2048, 4096, 8192};

void bench_fp32(std::vector<Result>& out) {
  const int64_t max = kSizes[3];
  Tensor a = on_gpu(random_host({max * max}, 1, -1, 1));
  Tensor b = on_gpu(random_host({max * max}, 2, -1, 1));
  Tensor c = joule::empty({max * max}, DType::Float32, Device::cuda(kDevice));
  const std::pair<const char*, ops::MatmulPrecision> precisions[] = {{"gemm_fp32", ops::MatmulPrecision::Highest},
                                                                     {"gemm_tf32", ops::MatmulPrecision::High},
                                                                     {"gemm_bf16", ops::MatmulPrecision::Medium}};
  for (const auto& entry : precisions) {
    const char* name = entry.first;
    const ops::MatmulPrecision precision = entry.second;
    for (int64_t s : kSizes) {
      Result r;
      r.name = name;
      r.m = r.n = r.k = s;
      try {
        joule::gemm::Sgemm g;
        g.m = g.n = g.k = s;
        g.a = a.data<float>();
        g.a_rs = s;
        g.a_cs = 1;
        g.b = b.data<float>();
        g.b_rs = s;
        g.b_cs = 1;
        g.c = c.data<float>();
        g.c_rs = s;
        g.c_cs = 1;
        r.ms = time_ms([&] { cuda::sgemm(g, kDevice, precision); });
        r.rate = 2.0 * s * s * s / (r.ms * 1e-3) / 1e12;
      } catch (const std::exception& e) {
        r.error = e.what();
      }
      out.push_back(r);
    }
  }
}

void bench_int8(std::vector<Result>& out) {
  for (int64_t s : kSizes) {
    Result r;
    r.name = "gemm_int8";
    r.m = r.n = r.k = s;
    r.int8 = true;
    try {
      Tensor a = on_gpu(random_int8_host({s, s}, 3));
      Tensor w = random_int8_host({s, s}, 4);
      Tensor packed = joule::empty({joule::quant::packed_panels(s), joule::quant::packed_groups(s), 256}, DType::Int8,
                                   Device::cpu());
      Tensor sums = joule::empty({s}, DType::Int32, Device::cpu());
      joule::quant::pack_weight(w.data<int8_t>(), s, s, s, packed.data<int8_t>(), sums.data<int32_t>());
      Tensor dw = on_gpu(packed);
      Tensor c = joule::empty({s, s}, DType::Int32, Device::cuda(kDevice));
      joule::quant::QGemm g;
      g.m = g.n = g.k = s;
      g.a_i8 = a.data<int8_t>();
      g.a_rs = s;
      g.w_packed = dw.data<int8_t>();
      g.c_i32 = c.data<int32_t>();
      g.c_rs = s;
      r.ms = time_ms([&] { cuda::qgemm(g, kDevice); });
      r.rate = 2.0 * s * s * s / (r.ms * 1e-3) / 1e12;
    } catch (const std::exception& e) {
      r.error = e.what();
    }
    out.push_back(r);
  }
}

// One training step of the MLP 784-4096-4096-10 on CUDA through the ops: forward, loss, backward,
// SGD with momentum 0.9 (fused step over the 6 parameters).
void bench_mlp(std::vector<Result>& out) {
  Result r;
  r.name = "mlp_step";
  r.batch = 1024;
  try {
    ops::set_matmul_precision(ops::MatmulPrecision::Highest);
    const int64_t batch = 1024, dims[] = {784, 4096, 4096, 10};
    std::vector<Tensor> params;
    for (int l = 0; l < 3; ++l) {
      params.push_back(on_gpu(random_host({dims[l + 1], dims[l]}, 10 + l, -0.02f, 0.02f)));
      params.push_back(on_gpu(random_host({dims[l + 1]}, 20 + l, -0.02f, 0.02f)));
    }
    std::vector<Tensor> bufs;
    for (const Tensor& p : params) bufs.push_back(ops::full(p.shape, 0.0, DType::Float32, Device::cuda(kDevice)));
    std::vector<uint8_t> init(params.size(), 0);
    Tensor x = on_gpu(random_host({batch, 784}, 30, 0, 1));
    Tensor target = joule::empty({batch}, DType::Int32, Device::cpu());
    for (int64_t i = 0; i < batch; ++i) target.data<int32_t>()[i] = static_cast<int32_t>((i * 7) % 10);
    target = on_gpu(target);
    Tensor one = ops::full({}, 1.0, DType::Float32, Device::cuda(kDevice));
    const auto relu = joule::gemm::Activation::Relu, none = joule::gemm::Activation::None;

    auto step = [&] {
      Tensor h1 = ops::linear_train(x, params[0], params[1], relu)[0];
      Tensor h2 = ops::linear_train(h1, params[2], params[3], relu)[0];
      Tensor logits = ops::linear(h2, params[4], params[5], none);
      std::vector<Tensor> ce = ops::cross_entropy(logits, target, 0.0, -100, ops::Reduction::Mean);
      Tensor dlogits = ops::cross_entropy_backward(one, logits, target, ce[1], 0.0, -100, ops::Reduction::Mean);
      ops::LinearGrads g3 = ops::linear_backward(dlogits, h2, params[4], std::nullopt, none, true, true, true,
                                                 std::nullopt, std::nullopt, false, false);
      ops::LinearGrads g2 = ops::linear_backward(*g3.dx, h1, params[2], h2, relu, true, true, true, std::nullopt,
                                                 std::nullopt, false, false);
      ops::LinearGrads g1 = ops::linear_backward(*g2.dx, x, params[0], h1, relu, false, true, true, std::nullopt,
                                                 std::nullopt, false, false);
      std::vector<Tensor> grads = {*g1.dw, *g1.db, *g2.dw, *g2.db, *g3.dw, *g3.db};
      ops::sgd_step(params, grads, bufs, init, 0.01, 0.9, 0.0, 0.0, false, false);
      std::fill(init.begin(), init.end(), 1);
    };
    r.ms = time_ms(step);
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  out.push_back(r);
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (cuda::device_count() == 0) {
      std::fprintf(stderr, "joule_cuda_bench: no usable GPU: %s\n", cuda::unavailable_reason().c_str());
      return 1;
    }
    const std::string device = cuda::device_name(kDevice);
    std::vector<Result> results;
    bench_fp32(results);
    bench_int8(results);
    bench_mlp(results);

    std::printf("Joule CUDA benchmark on %s (median of %d runs after %d warm-up)\n\n", device.c_str(), kRuns, kWarmup);
    std::printf("| benchmark | shape | ms | TFLOP/s (int8: TOP/s) |\n|---|---|---:|---:|\n");
    for (const Result& r : results) {
      std::string shape = r.batch > 0 ? "batch " + std::to_string(r.batch)
                                      : std::to_string(r.m) + "x" + std::to_string(r.n) + "x" + std::to_string(r.k);
      if (!r.error.empty()) {
        std::printf("| %s | %s | error: %s | |\n", r.name.c_str(), shape.c_str(), r.error.c_str());
      } else if (r.batch > 0) {
        std::printf("| %s | %s | %.3f | |\n", r.name.c_str(), shape.c_str(), r.ms);
      } else {
        std::printf("| %s | %s | %.3f | %.1f |\n", r.name.c_str(), shape.c_str(), r.ms, r.rate);
      }
    }
    if (argc > 1) {
      const std::string path = std::string(argv[1]) + "/joule_gpu_bench.json";
      FILE* f = std::fopen(path.c_str(), "w");
      if (f == nullptr) {
        std::fprintf(stderr, "joule_cuda_bench: cannot write %s\n", path.c_str());
        return 1;
      }
      std::fprintf(f, "{\"device\": \"%s\", \"results\": [", json_escape(device).c_str());
      for (size_t i = 0; i < results.size(); ++i) {
        const Result& r = results[i];
        std::fprintf(f, "%s\n  {\"name\": \"%s\"", i ? "," : "", r.name.c_str());
        if (r.batch > 0) {
          std::fprintf(f, ", \"batch\": %lld", static_cast<long long>(r.batch));
        } else {
          std::fprintf(f, ", \"m\": %lld, \"n\": %lld, \"k\": %lld", static_cast<long long>(r.m),
                       static_cast<long long>(r.n), static_cast<long long>(r.k));
        }
        if (!r.error.empty()) {
          std::fprintf(f, ", \"error\": \"%s\"}", json_escape(r.error).c_str());
        } else if (r.batch > 0) {
          std::fprintf(f, ", \"ms\": %.4f}", r.ms);
        } else {
          std::fprintf(f, ", \"ms\": %.4f, \"%s\": %.3f}", r.ms, r.int8 ? "tops" : "tflops", r.rate);
        }
      }
      std::fprintf(f, "\n]}\n");
      std::fclose(f);
      std::printf("\nwrote %s\n", path.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "joule_cuda_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
