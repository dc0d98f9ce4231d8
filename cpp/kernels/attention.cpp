// Fused attention: the dispatcher and the portable build of the kernels (attention_impl.h with
// 4-lane vectors: SSE2 on x86-64, scalar code elsewhere). The AVX2 and AVX-512 builds of the
// same kernels live in attention_x86.cpp.
#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "core/cpu_features.h"
#include "core/threadpool.h"

namespace joule::kernels {

namespace attention_generic {
#define JOULE_ATTN_VW 4
#include "kernels/attention_impl.h"
#undef JOULE_ATTN_VW
}  // namespace attention_generic

namespace attention_detail {
void forward_generic(const AttentionArgs& a, int64_t begin, int64_t end) {
  attention_generic::forward_heads(a, begin, end);
}
void backward_generic(const AttentionArgs& a, int64_t begin, int64_t end) {
  attention_generic::run_heads<attention_generic::BackwardFn>(a, begin, end);
}
}  // namespace attention_detail

namespace {

using Entry = void (*)(const AttentionArgs&, int64_t, int64_t);

Entry pick(bool backward) {
  using namespace attention_detail;
  const Isa isa = active_isa();
  if (x86_compiled()) {
    if (isa == Isa::Avx512) return backward ? backward_avx512 : forward_avx512;
    if (isa == Isa::Avx2) return backward ? backward_avx2 : forward_avx2;
  }
  return backward ? backward_generic : forward_generic;
}

// The fewest multiply-adds per task worth a pool wake-up (the GEMM's kMinParallelWork, scaled
// to the decode path's speed: 2^17 is ~5 us on one core). A decode step (Tq = 1, H = 4, D = 32:
// 64 * Tk multiply-adds per head) runs on the calling thread alone up to Tk = 512, with two heads
// per task from Tk = 1024 on. Measured, 2 threads, helpers still spinning from the previous call:
// Tk = 128 4.0 us split per head vs 4.8 on one thread, Tk = 1024 11.7 vs 18.4 us. A sleeping pool
// adds a futex wake and the helper's scheduling delay, which a task this size amortizes.
constexpr int64_t kMinTaskWork = int64_t{1} << 17;

void run(const AttentionArgs& a, bool backward) {
  const int64_t heads = a.B * a.H;
  if (heads == 0) return;
  Entry fn = pick(backward);
  // Whole (b, h) pairs per task: each owns its rows of the outputs (and, backward, its dK/dV).
  // Multiply-adds per head: q.k and p.v (backward: also dp, dq, dk, dv), causal counted in full.
  const int64_t per_head = std::max<int64_t>(1, a.Tq * a.Tk * a.D * (backward ? 5 : 2));
  const int64_t grain = std::max<int64_t>(1, kMinTaskWork / per_head);
  parallel_for(heads, grain, [&](int64_t begin, int64_t end) { fn(a, begin, end); });
}

}  // namespace

void attention_forward(const AttentionArgs& a) { run(a, false); }
void attention_backward(const AttentionArgs& a) { run(a, true); }

}  // namespace joule::kernels
