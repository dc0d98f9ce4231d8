#include <cmath>
#include <cstring>
#include <mutex>

#include "core/random.h"
#include "core/threadpool.h"
#include "kernels/cpu.h"
#include "ops/ops.h"
#include "ops/util.h"

namespace joule::ops {
namespace {

void check_finite(double v, const char* op, const char* what) {
  JOULE_CHECK(std::isfinite(v), Code::InvalidArgument, op, ": expected a finite ", what, ", got ", v);
}

// Builds the tensor on the CPU with `make`, then moves it where it was asked for.
template <typename Make>
Tensor on_device(const Shape& shape, DType dtype, Device device, Make make) {
  if (!device.is_cpu()) cuda::check_device(device.index);
  Tensor t = empty(shape, dtype, Device::cpu());
  make(t);
  return device.is_cpu() ? t : to_device(t, device);
}

template <typename Gen>
Tensor fill_by_index(const Shape& shape, DType dtype, Device device, Gen value_at) {
  return on_device(shape, dtype, device, [&](const Tensor& t) {
    dispatch_dtype(dtype, [&](auto tag) {
      using T = decltype(tag);
      T* p = t.data<T>();
      int64_t n = t.numel();
      for (int64_t i = 0; i < n; ++i) p[i] = convert_value<T>(value_at(i));
    });
  });
}

struct Rng {
  std::mutex mutex;
  uint64_t seed = 67280421310721ull;  // PyTorch's default, so an unseeded run is repeatable too
  uint64_t offset = 0;
};
Rng& rng() {
  static Rng r;
  return r;
}

// Reserves `blocks` Philox counters and returns (seed, first counter).
std::pair<uint64_t, uint64_t> reserve(int64_t blocks) {
  Rng& r = rng();
  std::lock_guard<std::mutex> lock(r.mutex);
  uint64_t first = r.offset;
  r.offset += static_cast<uint64_t>(blocks);
  return {r.seed, first};
}

// Fills n values, four per Philox block: emit(i, block's 4 words, j) for element i = 4 * block + j.
template <typename Emit>
void generate(int64_t n, Emit emit) {
  int64_t blocks = (n + 3) / 4;
  auto [seed, first] = reserve(blocks);
  parallel_for(blocks, 4096, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      auto r = philox(seed, first + static_cast<uint64_t>(blk));
      for (int64_t j = 0; j < 4 && blk * 4 + j < n; ++j) emit(blk * 4 + j, r.word, static_cast<int>(j));
    }
  });
}

// The same stream as generate() on the CPU, drawn on the GPU (cuda/nn.cu runs the same Philox).
Tensor random_on_cuda(cuda::RandomKind kind, const Shape& shape, DType dtype, Device device, double a, double b) {
  cuda::check_device(device.index);
  Tensor t = empty(shape, dtype, device);
  auto [seed, first] = reserve((t.numel() + 3) / 4);
  cuda::random_fill(kind, t, seed, first, a, b);
  return t;
}

}  // namespace

Tensor to_device(const Tensor& t, Device device) {
  if (t.device() == device) return t;
  Tensor src = contiguous(t);
  if (device.is_cuda()) cuda::check_device(device.index);
  Tensor out = empty(src.shape, src.dtype, device);
  size_t bytes = src.nbytes();
  if (bytes == 0) return out;
  if (src.device().is_cpu()) {
    cuda::copy_to_device(device.index, out.raw(), src.raw(), bytes);
  } else if (device.is_cpu()) {
    cuda::copy_to_host(src.device().index, out.raw(), src.raw(), bytes);
  } else {
    // Between two GPUs: stage through the host (peer copies are a later optimisation).
    Tensor host = to_device(src, Device::cpu());
    cuda::copy_to_device(device.index, out.raw(), host.raw(), bytes);
  }
  return out;
}

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  JOULE_CHECK(!std::isnan(value) || dtype == DType::Float32, Code::InvalidArgument,
        "full: NaN cannot be stored in an integer tensor");
  if (device.is_cuda() && dtype == DType::Float32) {
    cuda::check_device(device.index);
    Tensor t = empty(shape, dtype, device);
    cuda::fill(t, static_cast<float>(value));
    return t;
  }
  return on_device(shape, dtype, device, [&](const Tensor& t) { kernels::fill(t, value); });
}

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  check_finite(start, "arange", "start");
  check_finite(end, "arange", "end");
  check_finite(step, "arange", "step");
  JOULE_CHECK(step != 0, Code::InvalidArgument, "arange: expected a non-zero step");
  double count = std::ceil((end - start) / step);
  if (count < 0) count = 0;
  JOULE_CHECK(count <= static_cast<double>(kMaxElements), Code::InvalidArgument, "arange: ", count, " elements is too many");
  return fill_by_index({static_cast<int64_t>(count)}, dtype, device,
                       [&](int64_t i) { return start + static_cast<double>(i) * step; });
}

Tensor linspace(double start, double end, int64_t steps, DType dtype, Device device) {
  check_finite(start, "linspace", "start");
  check_finite(end, "linspace", "end");
  JOULE_CHECK(steps >= 0, Code::InvalidArgument, "linspace: expected steps >= 0, got ", steps);
  double span = end - start;
  return fill_by_index({steps}, dtype, device, [&](int64_t i) {
    if (steps == 1) return start;
    // Fill from both ends so that the last value is exactly `end`.
    return i < steps / 2 ? start + span * static_cast<double>(i) / static_cast<double>(steps - 1)
                         : end - span * static_cast<double>(steps - 1 - i) / static_cast<double>(steps - 1);
  });
}

Tensor eye(int64_t rows, int64_t cols, DType dtype, Device device) {
  JOULE_CHECK(rows >= 0 && cols >= 0, Code::InvalidArgument, "eye: expected non-negative sizes, got ", rows, "x", cols);
  return fill_by_index({rows, cols}, dtype, device, [&](int64_t i) { return i / cols == i % cols ? 1.0 : 0.0; });
}

Tensor from_host(const void* data, size_t bytes, const Shape& shape, DType dtype, Device device) {
  int64_t n = shape_numel(shape);
  JOULE_CHECK(static_cast<size_t>(n) * dtype_size(dtype) == bytes, Code::ShapeMismatch, "expected ",
        n * static_cast<int64_t>(dtype_size(dtype)), " bytes for shape ", shape_str(shape), " of ", dtype_name(dtype),
        ", got ", bytes);
  return on_device(shape, dtype, device, [&](const Tensor& t) {
    if (bytes) std::memcpy(t.raw(), data, bytes);
  });
}

void to_host(const Tensor& t, void* dst, size_t bytes) {
  JOULE_CHECK(bytes == t.nbytes(), Code::InvalidArgument, "to_host: expected a buffer of ", t.nbytes(), " bytes, got ",
        bytes);
  if (bytes == 0) return;
  Tensor c = contiguous(t);
  if (c.device().is_cpu()) {
    std::memcpy(dst, c.raw(), bytes);
  } else {
    cuda::copy_to_host(c.device().index, dst, c.raw(), bytes);
  }
}

void manual_seed(uint64_t seed) {
  Rng& r = rng();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.seed = seed;
  r.offset = 0;
}

RngState rng_state() {
  Rng& r = rng();
  std::lock_guard<std::mutex> lock(r.mutex);
  return {r.seed, r.offset};
}

void set_rng_state(RngState state) {
  Rng& r = rng();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.seed = state.seed;
  r.offset = state.offset;
}

Tensor rand(const Shape& shape, Device device) {
  if (device.is_cuda()) return random_on_cuda(cuda::RandomKind::Uniform, shape, DType::Float32, device, 0, 0);
  return on_device(shape, DType::Float32, device, [&](const Tensor& t) {
    float* p = t.data<float>();
    generate(t.numel(), [&](int64_t i, const uint32_t* r, int j) { p[i] = uniform01(r[j]); });
  });
}

Tensor randn(const Shape& shape, Device device) {
  if (device.is_cuda()) return random_on_cuda(cuda::RandomKind::Normal, shape, DType::Float32, device, 0, 0);
  return on_device(shape, DType::Float32, device, [&](const Tensor& t) {
    float* p = t.data<float>();
    // Box-Muller on the pairs (r0, r1) and (r2, r3) of each block.
    generate(t.numel(), [&](int64_t i, const uint32_t* r, int j) {
      int pair = j / 2 * 2;
      double u1 = (static_cast<double>(r[pair]) + 1.0) / 4294967296.0;  // (0, 1]: log is finite
      double u2 = static_cast<double>(r[pair + 1]) / 4294967296.0;
      double radius = std::sqrt(-2.0 * std::log(u1));
      double angle = 6.283185307179586 * u2;
      p[i] = static_cast<float>(j % 2 == 0 ? radius * std::cos(angle) : radius * std::sin(angle));
    });
  });
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Device device) {
  JOULE_CHECK(low < high, Code::InvalidArgument, "randint: expected low < high, got ", low, " and ", high);
  JOULE_CHECK(low >= INT32_MIN && high - 1 <= INT32_MAX, Code::InvalidArgument,
        "randint: expected bounds within the int32 range, got ", low, " and ", high);
  uint64_t range = static_cast<uint64_t>(high - low);
  if (device.is_cuda()) {
    return random_on_cuda(cuda::RandomKind::Int, shape, DType::Int32, device, static_cast<double>(low),
                          static_cast<double>(range));
  }
  return on_device(shape, DType::Int32, device, [&](const Tensor& t) {
    int32_t* p = t.data<int32_t>();
    generate(t.numel(), [&](int64_t i, const uint32_t* r, int j) {
      p[i] = static_cast<int32_t>(low + static_cast<int64_t>((static_cast<uint64_t>(r[j]) * range) >> 32));
    });
  });
}

Tensor bernoulli_mask(const Shape& shape, double keep, Device device) {
  JOULE_CHECK(keep >= 0 && keep <= 1, Code::InvalidArgument, "bernoulli: expected a probability in [0, 1], got ", keep);
  if (device.is_cuda()) return random_on_cuda(cuda::RandomKind::Bernoulli, shape, DType::Float32, device, keep, 0);
  return on_device(shape, DType::Float32, device, [&](const Tensor& t) {
    float* p = t.data<float>();
    generate(t.numel(), [&](int64_t i, const uint32_t* r, int j) {
      p[i] = static_cast<double>(r[j]) < keep * 4294967296.0 ? 1.f : 0.f;
    });
  });
}

}  // namespace joule::ops
