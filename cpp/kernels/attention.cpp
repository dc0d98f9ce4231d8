// Fused attention: the dispatcher and the portable build of the kernels (attention_impl.h with
// 4-lane vectors: SSE2 on x86-64, scalar code elsewhere). The AVX2 and AVX-512 builds of the
// same kernels live in attention_x86.cpp.
#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
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
  attention_generic::run_heads<attention_generic::ForwardFn>(a, begin, end);
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

void run(const AttentionArgs& a, bool backward) {
  const int64_t heads = a.B * a.H;
  if (heads == 0) return;
  Entry fn = pick(backward);
  // One (b, h) pair per task at least: each owns its rows of the outputs (and, backward, its dK/dV).
  parallel_for(heads, 1, [&](int64_t begin, int64_t end) { fn(a, begin, end); });
}

}  // namespace

void attention_forward(const AttentionArgs& a) { run(a, false); }
void attention_backward(const AttentionArgs& a) { run(a, true); }

}  // namespace joule::kernels
