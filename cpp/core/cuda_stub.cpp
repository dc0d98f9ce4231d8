// Built instead of cuda/*.cu when the addon is compiled without CUDA.
#include "core/error.h"
#include "cuda/backend.h"

namespace joule::cuda {
namespace {
[[noreturn]] void unavailable() {
  fail(Code::Device, "CUDA is not available: ", unavailable_reason());
}
}  // namespace

BuildInfo build_info() { return {}; }
int device_count() { return 0; }
std::string unavailable_reason() {
  return "this build of Joule has no CUDA support (rebuild with nvcc installed, JOULE_CUDA=ON)";
}
std::string device_name(int) { unavailable(); }
void check_device(int) { unavailable(); }
void* device_malloc(int, size_t) { unavailable(); }
void device_free(int, void*, size_t) {}
size_t cached_bytes(int) { return 0; }
void release_cached() {}
void copy_to_device(int, void*, const void*, size_t) { unavailable(); }
void copy_to_host(int, void*, const void*, size_t) { unavailable(); }
void copy_on_device(int, void*, const void*, size_t) { unavailable(); }
void synchronize(int) {}
void binary(ops::BinaryOp, const Tensor&, const Tensor&, const Tensor&) { unavailable(); }
void unary(ops::UnaryOp, const Tensor&, const Tensor&) { unavailable(); }
void fill(const Tensor&, float) { unavailable(); }
void copy_strided(const Tensor&, const Tensor&) { unavailable(); }
void attention_forward(const kernels::AttentionArgs&, int) { unavailable(); }

}  // namespace joule::cuda
