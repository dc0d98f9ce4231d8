// The native check program (joule_cuda_check): every CUDA kernel against the CPU reference, runnable on a GPU machine
// that has no Node.js. Each check registers itself at static-initialisation time and fails by throwing.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "core/error.h"
#include "core/tensor.h"

namespace joule::cuda_tools {

using CheckFn = void (*)();

struct CheckRegistrar {
  CheckRegistrar(const char* name, CheckFn fn);
};

// JOULE_GPU_CHECK(check_softmax_rows, "softmax: rows of awkward widths") { ... throw on failure ... }
#define JOULE_GPU_CHECK(ident, name)                                                   \
  static void ident();                                                                 \
  static const ::joule::cuda_tools::CheckRegistrar ident##_registrar(name, ident);     \
  static void ident()

// A float32 CPU tensor, uniform in [lo, hi), the same for a given seed on every machine.
Tensor random_cpu(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f);

// Copies `got` (on any device) to the host and compares it with the CPU tensor `want`, element by element in row-major
// order: |got - want| <= atol + rtol * |want|; NaN matches NaN; infinities must match exactly; integer dtypes compare
// exactly when atol == 0. Throws a joule::Error naming `what`, the first mismatching index with both values, and the
// largest error seen.
void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol, const std::string& what);

// Throws unless `fn` throws a joule::Error with `code` (for the error paths: bad devices, out of memory, ...).
void expect_error(Code code, const std::string& what, const std::function<void()>& fn);

// ---- additions (cuda/tools/check.cpp) ----

// The device the checks put their inputs on: cuda:0; under `joule_cuda_check --cpu` the CPU. That is a dry run for
// machines without a GPU: every comparison is then CPU against CPU, so it proves nothing about the kernels, but it
// runs the checks' own code (shapes, references, tolerances) before a GPU session is spent on them.
Device target_device();
bool dry_run();  // true under --cpu; checks that only make sense on a GPU (allocator, CUDA errors) return early

// An int32 CPU tensor, uniform in [lo, hi) (for indices and labels), the same for a given seed everywhere.
Tensor random_int32_cpu(const Shape& shape, uint64_t seed, int32_t lo, int32_t hi);

// The relative error ||got - want||_2 / ||want||_2 (float32 tensors, `got` on any device), for results whose
// elementwise error depends on the precision (TF32, BF16 GEMMs). Throws naming `what` if it exceeds `tol` or if
// any element of `got` is NaN where `want` is finite.
double expect_rel_l2(const Tensor& got, const Tensor& want, double tol, const std::string& what);

}  // namespace joule::cuda_tools
