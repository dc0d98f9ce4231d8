// The CPU thread pool. One pool per process, sized from JOULE_NUM_THREADS or the core count.
// The calling thread always takes part as worker 0, so a pool of N threads has N-1 helpers.
#pragma once
#include <cstdint>
#include <functional>

namespace joule {

int num_threads();
void set_num_threads(int n);  // 1..256; throws INVALID_ARGUMENT otherwise

// Runs fn(worker, workers) once on each of `workers` threads (clamped to num_threads())
// and returns when all are done. Nested calls, and calls while another region is running,
// run inline on the calling thread with workers = 1.
void run_parallel(int workers, const std::function<void(int worker, int workers)>& fn);

// Splits [0, n) into contiguous chunks of at least `grain` items, one per worker.
template <typename F>
void parallel_for(int64_t n, int64_t grain, F&& fn) {
  if (n <= 0) return;
  int64_t max_workers = grain > 0 ? (n + grain - 1) / grain : n;
  int workers = static_cast<int>(max_workers < num_threads() ? max_workers : num_threads());
  if (workers <= 1) {
    fn(int64_t{0}, n);
    return;
  }
  run_parallel(workers, [&](int w, int ws) {
    int64_t begin = n * w / ws, end = n * (w + 1) / ws;
    if (begin < end) fn(begin, end);
  });
}

}  // namespace joule
