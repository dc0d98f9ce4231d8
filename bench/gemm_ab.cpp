// A/B of two builds of the fp32 GEMM in one process, alternating call by call, so that both sides
// see the same minutes of a shared host (whose speed drifts by 10-30 % within minutes here).
// Built by scripts/gemm-ab.sh: side A is the GEMM of a base commit compiled with namespace
// `joule` renamed to `ja`, side B the working tree's renamed to `jb`; both get the same operands.
// With GEMM_AB_OPENBLAS=<libscipy_openblas64_*.so> (numpy's OpenBLAS, `scripts/gemm-ab.sh
// openblas ...`), side A is that library's sgemm instead, so Joule and the anchor share minutes.
//
//   gemm_ab THREADS SECONDS MxKxN[NN|NT|TN|TT] ...
//
// Prints per shape: medians and bests of each side (GFLOP/s), the median of the paired speed
// ratios B/A, and B's best as a share of the FMA peak measured right after. On 1 thread with
// AVX-512 also the median of B's speed over an FMA probe run right after each of its calls, as
// long as one call: the share of what the core gave at that moment (the host's other tenants
// slow the probe and the product alike), where "best / peak" compares moments apart.
#include <dlfcn.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cmath>
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
float fma_chains_avx512(int64_t iters, float seed);  // 16 chains of 16-lane FMAs, `iters` rounds
}

namespace {

// numpy's OpenBLAS (64-bit integer interface, scipy_ symbol prefix), opened at run time.
using CblasSgemm = void (*)(int layout, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                            const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
CblasSgemm openblas_sgemm = nullptr;

void open_openblas(const char* path, int threads) {
  void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    std::fprintf(stderr, "cannot open %s: %s\n", path, dlerror());
    std::exit(2);
  }
  openblas_sgemm = reinterpret_cast<CblasSgemm>(dlsym(lib, "scipy_cblas_sgemm64_"));
  auto set_threads = reinterpret_cast<void (*)(int)>(dlsym(lib, "scipy_openblas_set_num_threads64_"));
  auto core = reinterpret_cast<const char* (*)()>(dlsym(lib, "scipy_openblas_get_corename64_"));
  if (openblas_sgemm == nullptr || set_threads == nullptr) {
    std::fprintf(stderr, "%s: no scipy_cblas_sgemm64_ / scipy_openblas_set_num_threads64_\n", path);
    std::exit(2);
  }
  set_threads(threads);
  std::printf("side A: OpenBLAS (%s kernel), %d thread(s)\n", core ? core() : "?", threads);
}

// C = A B for the driver's layouts (row-major C; A or B transposed when stored column-major).
void openblas_product(const ja::gemm::Sgemm& g) {
  const bool ta = g.a_rs == 1 && g.a_cs != 1, tb = g.b_rs == 1 && g.b_cs != 1;
  openblas_sgemm(101 /* row major */, ta ? 112 : 111, tb ? 112 : 111, g.m, g.n, g.k, 1.0f, g.a, ta ? g.a_cs : g.a_rs,
                 g.b, tb ? g.b_cs : g.b_rs, g.beta, g.c, g.c_rs);
}

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
  // GEMM_AB_BETA=1: C += A B, as bench/gemm.ts times it (addmm_); default C = A B.
  static const float beta = std::getenv("GEMM_AB_BETA") ? static_cast<float>(std::atof(std::getenv("GEMM_AB_BETA"))) : 0.0f;
  g.beta = beta;
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
  if (const char* lib = std::getenv("GEMM_AB_OPENBLAS")) {
    // Each library's idle workers spin for a while after a call (OpenBLAS's for ~0.1 s) and take
    // the cores from the other's next call: only one thread compares fairly in one process.
    if (threads != 1) {
      std::fprintf(stderr, "against OpenBLAS only 1 thread is a fair comparison here (bench/gemm.ts runs 2 in separate processes)\n");
      return 2;
    }
    open_openblas(lib, threads);
  }
  auto run_a = [](const ja::gemm::Sgemm& g) {
    if (openblas_sgemm != nullptr) openblas_product(g); else ja::gemm::sgemm(g);
  };
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
    float* c_a = allocate(m * n);  // side A's own output, so the two results can be compared
    for (long q = 0; q < m * k; ++q) a[q] = static_cast<float>(q % 11) * 0.01f;
    for (long q = 0; q < k * n; ++q) b[q] = static_cast<float>(q % 13) * 0.01f;
    const auto ga = product<ja::gemm::Sgemm>(m, n, k, a, b, c_a, ta, tb);
    const auto gb = product<jb::gemm::Sgemm>(m, n, k, a, b, c, ta, tb);
    run_a(ga);
    jb::gemm::sgemm(gb);
    double diff = 0, scale = 0;
    for (long q = 0; q < m * n; ++q) diff = std::max<double>(diff, std::abs(c[q] - c_a[q])), scale = std::max<double>(scale, std::abs(c[q]));
    if (diff > 1e-5 * scale) std::printf("%s: the two sides' results differ (max |difference| %g, max |C| %g)\n", argv[i], diff, scale);
    std::vector<double> ta_s, tb_s, ratio, of_probe;
    // The paired probe: as many FMA rounds as take about one of B's calls.
    const bool paired_probe = threads == 1 && __builtin_cpu_supports("avx512f");
    int64_t probe_iters = 0;
    if (paired_probe) {
      double t = now();
      jb::gemm::sgemm(gb);
      const double call = now() - t;
      t = now();
      volatile float sink = joule::energy::fma_chains_avx512(1 << 16, 1.0f);
      (void)sink;
      probe_iters = std::max<int64_t>(1 << 16, static_cast<int64_t>((1 << 16) * call / (now() - t)));
    }
    const double end = now() + seconds;
    for (int round = 0; now() < end || round < 6; ++round) {
      double da = 0, db = 0;
      for (int side = 0; side < 2; ++side) {
        const bool a_side = (side == 0) == (round % 2 == 0);  // alternate which side goes first
        const double t = now();
        if (a_side) run_a(ga); else jb::gemm::sgemm(gb);
        (a_side ? da : db) = now() - t;
      }
      ta_s.push_back(da), tb_s.push_back(db), ratio.push_back(da / db);
      if (paired_probe) {
        const double t = now();
        volatile float sink = joule::energy::fma_chains_avx512(probe_iters, 1.0f);
        (void)sink;
        const double probe_flops = static_cast<double>(probe_iters) * 16 * 16 * 2 / (now() - t);
        of_probe.push_back(2.0 * m * n * k / db / probe_flops);
      }
    }
    const double gflop = 2.0 * m * n * k / 1e9;
    const double best_a = *std::min_element(ta_s.begin(), ta_s.end()), best_b = *std::min_element(tb_s.begin(), tb_s.end());
    const double peak = joule::energy::cpu_fma_peak(threads, 0.2) / 1e9;
    std::printf("%-16s %dT %5zu rounds | A med %4.0f best %4.0f | B med %4.0f best %4.0f GFLOP/s | B/A %.3f | B best %3.0f%% of peak %.0f\n",
                argv[i], threads, ratio.size(), gflop / median(ta_s), gflop / best_a, gflop / median(tb_s), gflop / best_b,
                median(ratio), 100 * gflop / best_b / peak, peak);
    if (paired_probe) {
      std::sort(of_probe.begin(), of_probe.end());
      auto at = [&](double q) { return 100 * of_probe[static_cast<size_t>(q * (of_probe.size() - 1))]; };
      std::printf("%-16s    B over the probe run right after each call: median %3.0f%% (deciles 1 / 9: %3.0f%% / %3.0f%%)\n",
                  argv[i], at(0.5), at(0.1), at(0.9));
    }
    std::fflush(stdout);
    std::free(a), std::free(b), std::free(c), std::free(c_a);
  }
}
