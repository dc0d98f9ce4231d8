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
void attention_backward(const kernels::AttentionArgs&, int) { unavailable(); }
void reduce(ops::ReduceOp, const Tensor&, const std::vector<bool>&, const Tensor&) { unavailable(); }
void softmax(const Tensor&, const Tensor&, int64_t, bool) { unavailable(); }
void zero_infinities(const Tensor&) { unavailable(); }
void copy_cast(const Tensor&, const Tensor&) { unavailable(); }
void fill_value(const Tensor&, double) { unavailable(); }
void clamp(const Tensor&, double, double, const Tensor&) { unavailable(); }
void where(const Tensor&, const Tensor&, const Tensor&, const Tensor&) { unavailable(); }
int64_t first_invalid_index(const Tensor&, int64_t, int32_t*) { unavailable(); }
void index_select(const Tensor&, int64_t, const Tensor&, const Tensor&) { unavailable(); }
void gather(const Tensor&, int64_t, const Tensor&, const Tensor&) { unavailable(); }
void scatter_add(const Tensor&, int64_t, const Tensor&, const Tensor&) { unavailable(); }
int64_t first_invalid_target(const Tensor&, int64_t, int64_t, int32_t*) { unavailable(); }
void cross_entropy_forward(const kernels::CrossEntropyArgs&, int, float*, float*, float*, bool) { unavailable(); }
void cross_entropy_backward(const kernels::CrossEntropyArgs&, int, const float*, const float*, const float*, bool,
                            float*) {
  unavailable();
}
void layer_norm_forward(int, const float*, const float*, const float*, int64_t, int64_t, double, float*, float*,
                        float*) {
  unavailable();
}
void layer_norm_backward(int, const float*, const float*, const float*, const float*, const float*, int64_t, int64_t,
                         float*, float*, float*) {
  unavailable();
}
void random_fill(RandomKind, const Tensor&, uint64_t, uint64_t, double, double) { unavailable(); }
void sgd_step(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>&,
              const std::vector<uint8_t>&, const kernels::SgdHyper&) {
  unavailable();
}
void adam_step(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>&,
               const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<double>&,
               const kernels::AdamHyper&) {
  unavailable();
}
double total_norm(const std::vector<Tensor>&, double) { unavailable(); }
void scale_inplace(const std::vector<Tensor>&, double) { unavailable(); }

void sgemm(const gemm::Sgemm&, int, ops::MatmulPrecision) { unavailable(); }
void sgemm_strided_batched(const gemm::Sgemm&, int64_t, int64_t, int64_t, int64_t, int, ops::MatmulPrecision) {
  unavailable();
}
void sgemm_batched(const gemm::Sgemm&, int64_t, const int64_t*, const int64_t*, const int64_t*, int,
                   ops::MatmulPrecision) {
  unavailable();
}
void activation_backward(gemm::Activation, const float*, int64_t, int64_t, const float*, float*, int64_t, int64_t,
                         int) {
  unavailable();
}
void column_sums(const float*, int64_t, int64_t, int64_t, int64_t, float*, bool, int) { unavailable(); }
void qgemm(const quant::QGemm&, int, Int8Kernel) { unavailable(); }

}  // namespace joule::cuda
