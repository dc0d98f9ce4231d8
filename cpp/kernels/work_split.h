// How a GEMM driver (fp32 or int8) cuts C into work items for the threads: parts_m row bands x
// parts_n column bands. Items never split K, so results do not depend on which thread computes
// what.
#pragma once
#include <algorithm>
#include <cstdint>

namespace joule::kernels {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

struct WorkSplit {
  int parts_m = 1, parts_n = 1;
};

// First the thread grid (tm x tn = threads) minimizing the slowest thread's estimated cost,
// cost(rows, cols) for a band of `rows` x `cols` elements of C (its multiply-adds plus the packing
// the split repeats). Then the split dimension is cut twice as fine and threads claim the items
// dynamically: when another process shares a core, the faster thread takes more items instead of
// waiting.
template <typename Cost>
WorkSplit plan_split(int64_t m, int64_t n, int64_t mr, int64_t nr, int threads, Cost cost) {
  WorkSplit best;
  int64_t best_cost = -1;
  const int64_t m_tiles = ceil_div(m, mr), n_tiles = ceil_div(n, nr);
  for (int tm = 1; tm <= threads; ++tm) {
    if (threads % tm != 0) continue;
    const int tn = threads / tm;
    if (tm > m_tiles || tn > n_tiles) continue;
    const int64_t c = cost(ceil_div(m_tiles, tm) * mr, ceil_div(n_tiles, tn) * nr);
    if (best_cost < 0 || c < best_cost) {
      best_cost = c;
      best = WorkSplit{tm, tn};
    }
  }
  if (threads > 1) {
    if (best.parts_n > 1) {
      best.parts_n = static_cast<int>(std::min<int64_t>(n_tiles, 2 * best.parts_n));
    } else if (best.parts_m > 1) {
      best.parts_m = static_cast<int>(std::min<int64_t>(m_tiles, 2 * best.parts_m));
    }
  }
  return best;
}

// The bounds of part `index` of `parts` when `tiles` tiles of `tile` elements cover `extent`.
inline void split_range(int64_t extent, int64_t tile, int index, int parts, int64_t* begin, int64_t* end) {
  const int64_t tiles = ceil_div(extent, tile);
  *begin = std::min(extent, tiles * index / parts * tile);
  *end = std::min(extent, tiles * (index + 1) / parts * tile);
}

}  // namespace joule::kernels
