// A/B of two builds of the fp32 GEMM in one process, alternating call by call, so that both sides
// see the same minutes of a shared host (whose speed drifts by 10-30 % within minutes here).
// Built by scripts/gemm-ab.sh: side A is the GEMM of a base commit compiled with namespace
// `joule` renamed to `ja`, side B the working tree's renamed to `jb`; both get the same operands.
//
//   gemm_ab THREADS SECONDS MxKxN[NN|NT|TN|TT] ...
//
// Prints per shape: medians and bests of each side (GFLOP/s), the median of the paired speed
// ratios B/A, and B's best as a share of the FMA peak measured right after.
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

// The slice of kernels/gemm/gemm.h and core/threadpool.h the driver uses, declared for each side.
#define JOULE_GEMM_AB_DECLARE(NS)                                                                      \
  namespace NS {                                                                                       \
  void set_num_threads(int n);                                                                         \
  namespace gemm {                                                                                     \
  enum class Activation { None, Relu, Gelu };                                                          \
  struct Sgemm {                                                                                       \
    int64_t m = 0, n = 0, k = 0;                                                                       \
    const float* a = nullptr;                                                                          \
    int64_t a_rs = 0, a_cs = 0;                                                                        \
    const float* b = nullptr;                                                                          \
    int64_t b_rs = 0, b_cs = 0;                                                                        \
    float* c = nullptr;                                                                                \
    int64_t c_rs = 0, c_cs = 0;                                                                        \
    float alpha = 1.0f, beta = 0.0f;                                                                   \
    const float* bias = nullptr;                                                                       \
    Activation activation = Activation::None;                                                          \
  };                                                                                                   \
  void sgemm(const Sgemm& args);                                                                       \
  }                                                                                                    \
  }
JOULE_GEMM_AB_DECLARE(ja)
JOULE_GEMM_AB_DECLARE(jb)
namespace joule::energy {
double cpu_fma_peak(int threads, double seconds);
}

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Operands in huge pages, as Joule's own tensors of 2 MiB and more are.
float* allocate(size_t count) {
  const size_t huge = size_t{2} << 20, bytes = (count * sizeof(float) + huge - 1) / huge * huge;
  auto* p = static_cast<float*>(std::aligned_alloc(huge, bytes));
  madvise(p, bytes, MADV_HUGEPAGE);
  std::memset(p, 0, bytes);
  return p;
}

template <class G>
G product(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c, bool ta, bool tb) {
  G g;
  g.m = m, g.n = n, g.k = k, g.a = a, g.b = b, g.c = c;
  g.a_rs = ta ? 1 : k, g.a_cs = ta ? m : 1;
  g.b_rs = tb ? 1 : n, g.b_cs = tb ? k : 1;
  g.c_rs = n, g.c_cs = 1;
  return g;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s THREADS SECONDS MxKxN[NN|NT|TN|TT] ...\n", argv[0]);
    return 2;
  }
  const int threads = std::atoi(argv[1]);
  const double seconds = std::atof(argv[2]);
  ja::set_num_threads(threads);
  jb::set_num_threads(threads);
  for (int i = 3; i < argc; ++i) {
    long m = 0, k = 0, n = 0;
    char mode[3] = "NN";
    if (std::sscanf(argv[i], "%ldx%ldx%ld%2s", &m, &k, &n, mode) < 3) {
      std::fprintf(stderr, "bad shape %s\n", argv[i]);
      return 2;
    }
    const bool ta = mode[0] == 'T', tb = mode[1] == 'T';
    float* a = allocate(m * k);
    float* b = allocate(k * n);
    float* c = allocate(m * n);
    for (long q = 0; q < m * k; ++q) a[q] = static_cast<float>(q % 11) * 0.01f;
    for (long q = 0; q < k * n; ++q) b[q] = static_cast<float>(q % 13) * 0.01f;
    const auto ga = product<ja::gemm::Sgemm>(m, n, k, a, b, c, ta, tb);
    const auto gb = product<jb::gemm::Sgemm>(m, n, k, a, b, c, ta, tb);
    ja::gemm::sgemm(ga);
    jb::gemm::sgemm(gb);
    std::vector<double> ta_s, tb_s, ratio;
    const double end = now() + seconds;
    for (int round = 0; now() < end || round < 6; ++round) {
      double da = 0, db = 0;
      for (int side = 0; side < 2; ++side) {
        const bool run_a = (side == 0) == (round % 2 == 0);  // alternate which side goes first
        const double t = now();
        if (run_a) ja::gemm::sgemm(ga); else jb::gemm::sgemm(gb);
        (run_a ? da : db) = now() - t;
      }
      ta_s.push_back(da), tb_s.push_back(db), ratio.push_back(da / db);
    }
    const double gflop = 2.0 * m * n * k / 1e9;
    const double best_a = *std::min_element(ta_s.begin(), ta_s.end()), best_b = *std::min_element(tb_s.begin(), tb_s.end());
    const double peak = joule::energy::cpu_fma_peak(threads, 0.2) / 1e9;
    std::printf("%-16s %dT %5zu rounds | A med %4.0f best %4.0f | B med %4.0f best %4.0f GFLOP/s | B/A %.3f | B best %3.0f%% of peak %.0f\n",
                argv[i], threads, ratio.size(), gflop / median(ta_s), gflop / best_a, gflop / median(tb_s), gflop / best_b,
                median(ratio), 100 * gflop / best_b / peak, peak);
    std::fflush(stdout);
    std::free(a), std::free(b), std::free(c);
  }
}
