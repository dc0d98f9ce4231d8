// The AVX2 + FMA and AVX-512 builds of the attention kernels (attention_impl.h with 8- and
// 16-lane vectors). The library is compiled without -march flags: each build enables its ISA
// here with a target pragma, and the dispatcher in attention.cpp calls it only when
// joule::active_isa() says the CPU (and JOULE_ISA / setIsa) allows it.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "kernels/attention.h"

namespace joule::kernels {

#if defined(__x86_64__) && defined(__GNUC__)

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace attention_avx2 {
#define JOULE_ATTN_VW 8
#include "kernels/attention_impl.h"
#undef JOULE_ATTN_VW
}  // namespace attention_avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
namespace attention_avx512 {
#define JOULE_ATTN_VW 16
#include "kernels/attention_impl.h"
#undef JOULE_ATTN_VW
}  // namespace attention_avx512
#pragma GCC pop_options

namespace attention_detail {
bool x86_compiled() { return true; }
void forward_avx2(const AttentionArgs& a, int64_t b, int64_t e) { attention_avx2::forward_heads(a, b, e); }
void backward_avx2(const AttentionArgs& a, int64_t b, int64_t e) { attention_avx2::run_heads<attention_avx2::BackwardFn>(a, b, e); }
void forward_avx512(const AttentionArgs& a, int64_t b, int64_t e) { attention_avx512::forward_heads(a, b, e); }
void backward_avx512(const AttentionArgs& a, int64_t b, int64_t e) { attention_avx512::run_heads<attention_avx512::BackwardFn>(a, b, e); }
}  // namespace attention_detail

#else

namespace attention_detail {
bool x86_compiled() { return false; }
void forward_avx2(const AttentionArgs& a, int64_t b, int64_t e) { forward_generic(a, b, e); }
void backward_avx2(const AttentionArgs& a, int64_t b, int64_t e) { backward_generic(a, b, e); }
void forward_avx512(const AttentionArgs& a, int64_t b, int64_t e) { forward_generic(a, b, e); }
void backward_avx512(const AttentionArgs& a, int64_t b, int64_t e) { backward_generic(a, b, e); }
}  // namespace attention_detail

#endif

}  // namespace joule::kernels
