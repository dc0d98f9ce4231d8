// Fused scaled-dot-product attention on the CPU: tiled, with an online softmax, so that the
// Tq x Tk score matrix is never materialised. The forward keeps the per-row log-sum-exp, from
// which the backward recomputes the probabilities one key block at a time.
// The ops layer (cpp/ops/attention.cpp) has checked shapes, dtypes and devices.
#pragma once
#include <cstdint>

namespace joule::kernels {

// Every tensor is addressed as base + b * s[0] + h * s[1] + t * s[2] + d (the head dim is unit
// stride); lse is contiguous [B, H, Tq].
struct AttentionArgs {
  int64_t B = 0, H = 0, Tq = 0, Tk = 0, D = 0;
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t q_s[3] = {0, 0, 0}, k_s[3] = {0, 0, 0}, v_s[3] = {0, 0, 0};
  bool causal = false;  // query i sees keys j <= i + (Tk - Tq) (aligned at the end, as a KV cache needs)
  float scale = 1.f;
  // forward outputs / backward inputs
  float* o = nullptr;
  int64_t o_s[3] = {0, 0, 0};
  float* lse = nullptr;
  // backward only
  const float* dout = nullptr;
  int64_t do_s[3] = {0, 0, 0};
  float* dq = nullptr;
  float* dk = nullptr;
  float* dv = nullptr;
  int64_t dq_s[3] = {0, 0, 0}, dk_s[3] = {0, 0, 0}, dv_s[3] = {0, 0, 0};
};

// The largest head size the kernels take.
constexpr int64_t kAttentionMaxHeadDim = 256;

// Dispatch on joule::active_isa(); threaded over B * H.
void attention_forward(const AttentionArgs& a);
void attention_backward(const AttentionArgs& a);

namespace attention_detail {
// Per-ISA entry points (process the (b, h) pairs [begin, end)).
void forward_generic(const AttentionArgs& a, int64_t begin, int64_t end);
void backward_generic(const AttentionArgs& a, int64_t begin, int64_t end);
void forward_avx2(const AttentionArgs& a, int64_t begin, int64_t end);
void backward_avx2(const AttentionArgs& a, int64_t begin, int64_t end);
void forward_avx512(const AttentionArgs& a, int64_t begin, int64_t end);
void backward_avx512(const AttentionArgs& a, int64_t begin, int64_t end);
bool x86_compiled();
}  // namespace attention_detail

}  // namespace joule::kernels
