// fp32 GEMM driver: ISA dispatch, BLIS-style cache blocking and packing, threading, batching,
// the scalar reference and gelu().
//
// Structure of one product (per work item, i.e. per rectangle of C, on one thread):
//   for jc in N step NC
//     for pc in K step KC
//       pack B(pc.., jc..) into NR-column micro-panels (the KC x NC block: L2 or L3), unless this
//         thread packed that very block for its previous row band of the same product
//       for ic in M step MC
//         prepare A(ic.., pc..): a row-major A is read in place, MR rows at a time (only a partial
//           last panel is packed); any other A is packed into MR-row micro-panels (with a single
//           K block, once for all N blocks)
//         the two tile loops, in the order the kernel table asks for:
//           RowPanelOuter (AVX-512 zmm 6x64): an A micro-panel (MR x KC) stays in L1 while the
//             B block streams from L2 -- NR = 64 makes a B micro-panel too big for L1;
//           ColumnPanelOuter (AVX2 6x16, generic; classic BLIS): a B micro-panel (KC x NR) stays
//             in L1 while the A micro-panels stream from L2;
//             micro-kernel: MR x NR tile in registers (a narrower one for a narrow last column
//             panel), merged into C with the fused epilogue.
// The first K block applies the caller's beta, later blocks accumulate (beta = 1), and only the
// last K block adds the bias and applies the activation, so the epilogue runs while each tile is
// still in registers instead of as a separate pass over C.
//
// Special shapes: M == 1 runs a GEMV that streams B once and packs nothing; a narrow C (N well
// below NR) is computed as C^T = B^T A^T so the wide side of the tile runs along M, when that
// saves more than the slower merge of a C with a column stride costs.
//
// Threads compute disjoint rectangles of C (splits of M and/or N, never of K), aligned to the
// micro-tile grid, so every element of C sees the same sequence of floating-point operations
// whatever the thread count: results are bit-identical for 1, 2, ... threads. (The K blocking
// depends only on the product; a panel read in place and a packed one go through the same
// multiply-adds in the same order.) Packing buffers are per thread, 64-byte aligned, and reused
// across calls.
#include "kernels/gemm/gemm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/cpu_features.h"
#include "core/error.h"
#include "core/flops.h"
#include "core/threadpool.h"
#include "kernels/gemm/internal.h"
#include "kernels/work_split.h"

namespace joule::gemm {

float gelu(float x) { return x * 0.5f * (1.0f + std::erf(x * 0.70710678118654752f)); }

float gelu_grad(float x) {
  constexpr float kInvSqrt2 = 0.70710678118654752f, kInvSqrt2Pi = 0.39894228040143268f;
  // x phi(x) at x clamped to [-13, 13]: below 1e-35 beyond, and gelu'(+-inf) is 1 and 0, not inf * 0.
  const float xc = std::clamp(x, -13.0f, 13.0f);  // NaN passes through
  return 0.5f * (1.0f + std::erf(x * kInvSqrt2)) + xc * kInvSqrt2Pi * std::exp(-0.5f * xc * xc);
}

namespace detail {
namespace {

// Below this many multiply-adds (m*n*k) a product runs on one thread: waking the pool costs
// more than it saves (2^20 multiply-adds is ~10 us on one core, a few pool wake-ups).
constexpr int64_t kMinParallelWork = int64_t{1} << 20;
// For M == 1 (GEMV), memory-bound: split N once B has at least this many elements.
constexpr int64_t kMinParallelGemvWork = int64_t{1} << 18;
// Estimated cost of packing one element, in multiply-add units, for choosing the thread grid.
constexpr int64_t kPackCostPerElement = 8;

inline float activate(float v, Activation activation) {
  switch (activation) {
    case Activation::Relu:
      return v < 0.0f ? 0.0f : v;  // NaN stays NaN, as with max(0, v) in the SIMD epilogue
    case Activation::Gelu:
      return gelu(v);
    case Activation::None:
      break;
  }
  return v;
}

using kernels::ceil_div;
using kernels::round_up;
using kernels::split_range;
using kernels::WorkSplit;

// A grow-only, 64-byte aligned scratch buffer. One set per thread: pool threads live for the
// process, so after the first few calls packing never allocates.
class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer() { std::free(data_); }

  float* get(int64_t count) {
    if (count > capacity_) {
      std::free(data_);
      data_ = nullptr;
      capacity_ = 0;
      const size_t bytes = static_cast<size_t>(round_up(count * static_cast<int64_t>(sizeof(float)), 64));
      data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
      check(data_ != nullptr, Code::OutOfMemory, "sgemm: cannot allocate a packing buffer of ", bytes, " bytes");
      capacity_ = count;
      ++allocations_;
    }
    return data_;
  }
  // Changes whenever get() reallocates (the new block may sit at the old address).
  uint64_t allocations() const { return allocations_; }

 private:
  float* data_ = nullptr;
  int64_t capacity_ = 0;
  uint64_t allocations_ = 0;
};

// Where the micro-kernel reads one micro-panel: in place in the caller's operand or in a packing
// buffer (see MicroKernel in internal.h for `stride`; `rows`: an A panel read along its rows).
struct PanelRef {
  const float* p = nullptr;
  int64_t stride = 0;
  bool rows = false;
};

struct Workspace {
  ScratchBuffer a_panels, b_panels, gemv_x, gemv_y, c_transposed, a_slice;
  std::vector<PanelRef> a_refs;
  // What b_panels holds: block (pc, kc, jc, nc) of the product numbered `call` (0: nothing),
  // packed into allocation number `b_allocation` of the buffer, so that a thread taking several
  // row bands of one product packs B once.
  uint64_t b_call = 0, b_allocation = 0;
  int64_t b_pc = 0, b_kc = 0, b_jc = 0, b_nc = 0;
};

// Numbers products for the B cache (never 0).
std::atomic<uint64_t> g_product_count{0};

Workspace& thread_workspace() {
  thread_local Workspace workspace;
  return workspace;
}

const IsaKernels& select_kernels() {
  const Isa isa = active_isa();
  if (isa == Isa::Avx512) {
    if (const IsaKernels* k = avx512_kernels()) return *k;
  }
  if (isa == Isa::Avx512 || isa == Isa::Avx2) {
    if (const IsaKernels* k = avx2_kernels()) return *k;
  }
  return *generic_kernels();
}

// Zeroes lanes [used, width) of kc packed steps, so that edge tiles multiply by zeros.
void zero_unused_lanes(float* panel, int64_t kc, int used, int width) {
  if (used == width) return;
  for (int64_t p = 0; p < kc; ++p) std::memset(panel + p * width + used, 0, sizeof(float) * (width - used));
}

// Prepares the MR-row micro-panels of rows [i0, i0 + mc) x columns [p0, p0 + kc) of A: refs[q]
// says where the micro-kernel reads panel q. A full panel of a row-major A is read in place (the
// transposing pack cost 10-25 % of the GPT products, and the rows kernel reads A as fast);
// other panels are packed into dst (panel q at dst + q * kc * MR holds, for each p in order, the
// MR values A(i0 + q*MR + r, p0 + p), zero past mc).
void prepare_a(const Sgemm& g, const IsaKernels& ks, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, float* dst,
               PanelRef* refs) {
  const float* block = g.a + i0 * g.a_rs + p0 * g.a_cs;
  if (g.a_rs == 1 && g.a_cs != 1) {
    // Column-major A (TN, TT): all panels at once, reading A along its memory (see pack_steps).
    ks.pack_steps(block, g.a_cs, static_cast<int>(mc), kc, mr, dst);
    for (int64_t ib = 0; ib < mc; ib += mr, dst += kc * mr) *refs++ = PanelRef{dst, mr, false};
    return;
  }
  for (int64_t ib = 0; ib < mc; ib += mr, dst += kc * mr, ++refs) {
    const int rows = static_cast<int>(std::min<int64_t>(mr, mc - ib));
    const float* src = block + ib * g.a_rs;
    if (g.a_cs == 1 && rows == mr) {
      *refs = PanelRef{src, g.a_rs, true};  // row-major A (NN, NT), read in place
      continue;
    }
    *refs = PanelRef{dst, mr, false};
    if (g.a_cs == 1) {
      // The last, partial panel of a row-major A: a transpose, in 8x8 register blocks in the
      // SIMD files; zero-pads itself.
      ks.pack_transposed(src, g.a_rs, rows, kc, mr, dst);
    } else {
      for (int r = 0; r < rows; ++r) {
        for (int64_t p = 0; p < kc; ++p) dst[p * mr + r] = src[r * g.a_rs + p * g.a_cs];
      }
      zero_unused_lanes(dst, kc, rows, mr);
    }
  }
}

// Packs rows [p0, p0 + kc) x columns [j0, j0 + nc) of B into NR-column micro-panels: panel q at
// dst + q * kc * NR holds, for each p in order, the NR values B(p0 + p, j0 + q*NR + j), zero past nc.
// B is never multiplied in place by every row panel: a row-major B with rows a multiple of 4 KiB
// apart puts every step of a panel in the same few L1 sets (1024^3 ran at 40 % of the packed
// speed). Only the first row panel of a block may read it in place, packing it as it goes (see
// packing_b in gemm_rectangle).
void pack_b(const Sgemm& g, const IsaKernels& ks, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, float* dst) {
  const float* block = g.b + p0 * g.b_rs + j0 * g.b_cs;
  if (g.b_cs == 1) {
    // Row-major B (NN, TN): every panel at once, reading B along its rows.
    ks.pack_steps(block, g.b_rs, static_cast<int>(nc), kc, nr, dst);
    return;
  }
  for (int64_t jb = 0; jb < nc; jb += nr, dst += kc * nr) {
    const int cols = static_cast<int>(std::min<int64_t>(nr, nc - jb));
    const float* src = block + jb * g.b_cs;
    if (g.b_rs == 1) {
      // B = W^T of a row-major W (NT, TT): a transpose, like row-major A.
      ks.pack_transposed(src, g.b_cs, cols, kc, nr, dst);
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        for (int j = 0; j < cols; ++j) dst[p * nr + j] = src[p * g.b_rs + j * g.b_cs];
      }
      zero_unused_lanes(dst, kc, cols, nr);
    }
  }
}

// The K blocking depends only on k (never on the thread split), so every element of C gets the
// same accumulation order. Blocks are balanced: k = 300 with KC = 256 gives 152 + 148, not 256 + 44.
int64_t k_block_size(int64_t k, int64_t kc_max) { return ceil_div(k, ceil_div(k, kc_max)); }

// The K block: longer when A is read in place (its micro-panel, MR rows of it, stays in L1 anyway,
// and C is then read back fewer times). Depends only on the product, not on the thread split.
int64_t k_step(const Sgemm& g, const IsaKernels& ks) {
  return k_block_size(g.k, g.a_cs == 1 ? ks.kc_in_place : ks.kc);
}

// The N block (packed B): about as many floats as the kernel table asks for a block whatever the K
// block (KC x NC, or b_block_in_place when A is read in place).
int64_t n_step(const Sgemm& g, const IsaKernels& ks, int64_t kc_step) {
  const int64_t block_floats = g.a_cs == 1 ? ks.b_block_in_place : ks.kc * ks.nc;
  return std::max<int64_t>(ks.nr, std::min(ks.nc, block_floats / kc_step) / ks.nr * ks.nr);
}

// C(m0:m1, n0:n1) on the calling thread. m0 and n0 are multiples of MR and NR.
// row_bias: the bias of a transposed problem (one value per row of C), or null.
void gemm_rectangle(const Sgemm& g, const float* row_bias, const IsaKernels& ks, int64_t m0, int64_t m1, int64_t n0,
                    int64_t n1, uint64_t call) {
  const int mr = ks.mr, nr = ks.nr;
  const int64_t kc_step = k_step(g, ks), nc_step = n_step(g, ks, kc_step);
  int64_t mc_step = round_up(ks.mc, mr);  // multiples of the tile: edge tiles only at m1, n1
  if (g.a_rs == 1 && g.a_cs != 1) {
    // Packing column-major A reads whole runs of MC floats per step: longer (balanced) blocks make
    // it read more of each row of the source at once.
    mc_step = round_up(ceil_div(m1 - m0, ceil_div(m1 - m0, 2 * ks.mc)), mr);
  }
  Workspace& ws = thread_workspace();
  // A packed A with a single K block serves every N block: pack all of its row bands once (on
  // the first N block) instead of once per N block, up to 4 MiB of them (the buffer lives as long
  // as the thread; a bigger A comes back from memory either way).
  constexpr int64_t kMaxKeptAFloats = int64_t{1} << 20;
  const bool keep_a = g.a_cs != 1 && g.k <= kc_step && n1 - n0 > nc_step && round_up(m1 - m0, mr) * g.k <= kMaxKeptAFloats;
  const int64_t a_block = keep_a ? round_up(m1 - m0, mr) : std::min(mc_step, round_up(m1 - m0, mr));
  const int64_t b_block = std::min(nc_step, round_up(n1 - n0, nr));
  float* a_panels = ws.a_panels.get(a_block * kc_step);
  float* b_panels = ws.b_panels.get(b_block * kc_step);
  if (static_cast<int64_t>(ws.a_refs.size()) < a_block / mr) ws.a_refs.resize(a_block / mr);

  for (int64_t jc = n0; jc < n1; jc += nc_step) {
    const int64_t nc = std::min(nc_step, n1 - jc);
    for (int64_t pc = 0; pc < g.k; pc += kc_step) {
      const int64_t kc = std::min(kc_step, g.k - pc);
      const bool last_k_block = pc + kc == g.k;
      TileEpilogue ep;
      ep.alpha = g.alpha;
      ep.beta = pc == 0 ? g.beta : 1.0f;
      ep.activation = last_k_block ? g.activation : Activation::None;
      const float* bias = last_k_block ? g.bias : nullptr;
      const float* bias_per_row = last_k_block ? row_bias : nullptr;

      // A row band of the same product after another on this thread may find its B block packed.
      // Otherwise a row-major B of whole panels is packed by the first row panel's kernels as they
      // read it (packing_b): the copy then rides in the load and store slots the FMAs leave free,
      // with the kernel's own prefetch ahead of it, instead of a pass on its own before the block
      // (which cost 2-4 % at 512^3-2048^3 and 10 % at 256x1024x1024 on 1 thread, Zen 5). Paired
      // call by call: 1 thread 1.017-1.026x at 512^3-2048^3, 1.04-1.06x at the MLP shapes, 1.12x
      // at 128x4096x512 TN; 2 threads 1.014-1.037x and 1.02-1.03x. Else B is packed first.
      bool packing_b = false;
      if (call == 0 || ws.b_call != call || ws.b_allocation != ws.b_panels.allocations() || ws.b_pc != pc ||
          ws.b_kc != kc || ws.b_jc != jc || ws.b_nc != nc) {
        packing_b = ks.packing_micro_kernel != nullptr && g.b_cs == 1 && nc % nr == 0;
        if (!packing_b) pack_b(g, ks, pc, kc, jc, nc, nr, b_panels);
        ws.b_call = call;
        ws.b_allocation = ws.b_panels.allocations();
        ws.b_pc = pc;
        ws.b_kc = kc;
        ws.b_jc = jc;
        ws.b_nc = nc;
      }
      for (int64_t ic = m0; ic < m1; ic += mc_step) {
        const int64_t mc = std::min(mc_step, m1 - ic);
        float* a_band = keep_a ? a_panels + (ic - m0) * kc_step : a_panels;
        PanelRef* a_refs = ws.a_refs.data() + (keep_a ? (ic - m0) / mr : 0);
        if (!keep_a || jc == n0) prepare_a(g, ks, ic, mc, pc, kc, mr, a_band, a_refs);
        auto tile = [&](int64_t ir, int64_t jr) {
          const int rows = static_cast<int>(std::min<int64_t>(mr, mc - ir));
          const int cols = static_cast<int>(std::min<int64_t>(nr, nc - jr));
          TileEpilogue tile_ep = ep;
          tile_ep.bias = bias != nullptr ? bias + jc + jr : nullptr;
          tile_ep.row_bias = bias_per_row != nullptr ? bias_per_row + ic + ir : nullptr;
          float* c_tile = g.c + (ic + ir) * g.c_rs + (jc + jr) * g.c_cs;
          const PanelRef& a = a_refs[ir / mr];
          if (packing_b && ic == m0 && ir == 0) {  // the first use of B's panel jr in this block
            const PackingMicroKernel packing = a.rows ? ks.packing_micro_kernel_rows : ks.packing_micro_kernel;
            packing(kc, a.p, a.stride, g.b + pc * g.b_rs + jc + jr, g.b_rs, b_panels + jr * kc, c_tile, g.c_rs, g.c_cs,
                    rows, cols, tile_ep);
            return;
          }
          MicroKernel kernel = a.rows ? ks.micro_kernel_rows : ks.micro_kernel;
          if (cols < nr) {
            // A narrow last column panel (n = 80: 16 of 64 columns) runs a narrower kernel.
            const int64_t v = ceil_div(cols, ks.vector_width);
            MicroKernel narrow = v >= 4 ? nullptr : a.rows ? ks.narrow_rows[v] : ks.narrow[v];
            if (narrow != nullptr) kernel = narrow;
          }
          kernel(kc, a.p, a.stride, b_panels + jr * kc, nr, c_tile, g.c_rs, g.c_cs, rows, cols, tile_ep);
        };
        if (ks.order == LoopOrder::ColumnPanelOuter) {
          for (int64_t jr = 0; jr < nc; jr += nr) {
            for (int64_t ir = 0; ir < mc; ir += mr) tile(ir, jr);
          }
        } else {
          for (int64_t ir = 0; ir < mc; ir += mr) {
            for (int64_t jr = 0; jr < nc; jr += nr) tile(ir, jr);
          }
        }
      }
    }
  }
}

// Splitting N makes every band pack all of A, splitting M makes every band pack all of B, so
// small M splits N and small N splits M.
WorkSplit plan_split(int64_t m, int64_t n, int64_t k, int mr, int nr, int threads) {
  return kernels::plan_split(m, n, mr, nr, threads, [k](int64_t rows, int64_t cols) {
    return rows * cols * k + kPackCostPerElement * k * (rows + cols);
  });
}

// M == 1 with B contiguous along one axis: a GEMV that streams B once and packs nothing.
// Each thread takes a range of columns (multiples of 16, so tails stay at the true end).
void gemv_path(const Sgemm& g, const float* row_bias, const IsaKernels& ks, int max_threads) {
  const float* x = g.a;
  if (g.a_cs != 1) {
    float* gathered = thread_workspace().gemv_x.get(g.k);
    for (int64_t p = 0; p < g.k; ++p) gathered[p] = g.a[p * g.a_cs];
    x = gathered;
  }
  constexpr int64_t kColumnUnit = 16;
  int threads = 1;
  if (max_threads > 1 && g.k * g.n >= kMinParallelGemvWork) {
    threads = static_cast<int>(std::min<int64_t>(max_threads, ceil_div(g.n, kColumnUnit)));
  }
  auto run_columns = [&](int worker, int workers) {
    int64_t j0, j1;
    split_range(g.n, kColumnUnit, worker, workers, &j0, &j1);
    if (j0 >= j1) return;
    float* y = thread_workspace().gemv_y.get(j1 - j0);
    if (g.b_cs == 1) {
      ks.gemv_rows(g.k, j1 - j0, x, g.b + j0, g.b_rs, y);
    } else {
      ks.gemv_cols(g.k, j1 - j0, x, g.b + j0 * g.b_cs, g.b_cs, y);
    }
    TileEpilogue ep;
    ep.alpha = g.alpha;
    ep.beta = g.beta;
    ep.bias = g.bias != nullptr ? g.bias + j0 : nullptr;
    ep.row_bias = row_bias;
    ep.activation = g.activation;
    if (g.c_cs == 1) {
      ks.merge_row(y, g.c + j0, j1 - j0, ep);
    } else {
      merge_tile_scalar(y, 0, g.c + j0 * g.c_cs, 0, g.c_cs, 1, j1 - j0, ep);
    }
  };
  if (threads <= 1) {
    run_columns(0, 1);
  } else {
    run_parallel(threads, run_columns);
  }
}

// k == 0: C = beta * C (C not read when beta == 0), then bias and activation.
void scale_only(const Sgemm& g) {
  for (int64_t i = 0; i < g.m; ++i) {
    for (int64_t j = 0; j < g.n; ++j) {
      float* cp = g.c + i * g.c_rs + j * g.c_cs;
      float v = g.beta == 0.0f ? 0.0f : g.beta * *cp;
      if (g.bias != nullptr) v += g.bias[j];
      *cp = activate(v, g.activation);
    }
  }
}

void validate(const Sgemm& g, const char* who) {
  check(g.m >= 0 && g.n >= 0 && g.k >= 0, Code::InvalidArgument, who, ": negative dimension (m=", g.m, ", n=", g.n,
        ", k=", g.k, ")");
  if (g.m == 0 || g.n == 0) return;
  check(g.c != nullptr, Code::InvalidArgument, who, ": C is null");
  if (g.k > 0) check(g.a != nullptr && g.b != nullptr, Code::InvalidArgument, who, ": A or B is null");
}

// Whether C^T = B^T A^T is clearly cheaper: it wastes less of the micro-tile on padding (n = 10
// with NR = 64 pads to 64 columns, while m = 10 with MR = 6 pads to 12 rows), but an orientation
// whose C has a column stride merges every tile through the scalar code, once per K block (with
// k = 128 that cost as much as the multiply-adds: a 4096 x 128 x 80 product ran 1.5x slower
// transposed). Depends only on the shape and strides.
bool prefer_transposed(const Sgemm& g, const IsaKernels& ks) {
  constexpr int64_t kScalarMergeCost = 128;  // per element of C and K block, in multiply-adds
  const int64_t merges = g.m * g.n * ceil_div(g.k, ks.kc) * kScalarMergeCost;
  const int64_t cost = round_up(g.m, ks.mr) * round_up(g.n, ks.nr) * g.k + (g.c_cs != 1 ? merges : 0);
  const int64_t cost_transposed = round_up(g.n, ks.mr) * round_up(g.m, ks.nr) * g.k + (g.c_rs != 1 ? merges : 0);
  return 4 * cost_transposed < 3 * cost;
}

// x W^T with few rows of x (a batch of 32-256 against a row-major weight W): the direct product
// packs all of W^T into B panels, n x k elements, for m rows of work. C^T = W x^T instead reads W
// in place (the rows kernel's A) and packs only x, m x k elements, at the price of writing C^T to a
// row-major scratch (its tiles keep the vector merge) and transposing that into C. Against the
// direct product (scripts/gemm-ab.sh, NT): 64x1024x1024 1.38x on 1 thread / 1.24x on 2,
// 128x784x1024 1.17x / 1.09x, 128x1024x1024 1.13x / 1.12x; at m = 256 it was 1.08x on 1 thread but
// 0.91x on 2 (with a serial transpose), and 256x128x512 (small k: the transpose dominates) 0.66x,
// which the costs below leave on the direct path. The transpose into C is the ISA's (8 x 8 register
// transposes: 0.11 ms for 256 x 1024 where the scalar loop took 0.66), which made the scratch path
// 1.02-1.05x faster at 64-128 rows and brought m = 256 to 0.99-1.08x (still left direct). Per
// element, in multiply-adds: packing ~0.4 ns (memory-bound), the transpose ~0.4 ns, a multiply-add
// ~0.013 ns (64x128x1024 now takes the scratch: 1.05x / 1.03x on 1 / 2 threads). Bit-identical to
// the direct product: both read A in place, so the K blocks and every element's sequence of FMAs
// are the same.
bool prefer_transposed_via_scratch(const Sgemm& g, const IsaKernels& ks) {
  if (g.m < 2 || g.beta != 0.0f || g.c_cs != 1 || g.a_cs != 1 || g.b_rs != 1 || g.b_cs == 1) return false;
  constexpr int64_t kPack = 32, kTranspose = 32;
  const int64_t direct = round_up(g.m, ks.mr) * round_up(g.n, ks.nr) * g.k + kPack * g.n * g.k;
  const int64_t via_scratch = round_up(g.n, ks.mr) * round_up(g.m, ks.nr) * g.k + kPack * g.m * g.k + kTranspose * g.m * g.n;
  return 10 * via_scratch < 9 * direct;
}

// The same product as C^T = B^T A^T (C's strides swapped; the caller's per-column bias becomes a
// per-row bias, passed separately).
Sgemm transposed_problem(const Sgemm& g) {
  Sgemm t = g;
  t.m = g.n;
  t.n = g.m;
  t.a = g.b;
  t.a_rs = g.b_cs;
  t.a_cs = g.b_rs;
  t.b = g.a;
  t.b_rs = g.a_cs;
  t.b_cs = g.a_rs;
  t.c_rs = g.c_cs;
  t.c_cs = g.c_rs;
  t.bias = nullptr;
  return t;
}

// C(i, j) = ct[j * m + i] (ct is C^T, row-major), rows of C split between threads.
void transpose_into_c(const float* ct, const Sgemm& g, const IsaKernels& ks, int max_threads) {
  const int64_t m = g.m, n = g.n;
  auto rows = [&](int worker, int workers) {
    int64_t i0 = 0, i1 = 0;
    kernels::split_range(m, 16, worker, workers, &i0, &i1);
    if (i1 > i0) ks.transpose(ct + i0, m, n, i1 - i0, g.c + i0 * g.c_rs, g.c_rs);
  };
  const int threads = static_cast<int>(std::min<int64_t>(max_threads, std::max<int64_t>(1, m * n / (int64_t{1} << 16))));
  if (threads <= 1) {
    rows(0, 1);
  } else {
    run_parallel(threads, rows);
  }
}

void run_product(const Sgemm& g, const float* row_bias, const IsaKernels& ks, int max_threads);

// One product on at most max_threads threads (1: the calling thread only).
void sgemm_with_threads(const Sgemm& args, int max_threads) {
  if (args.m == 0 || args.n == 0) return;
  if (args.k == 0) {
    scale_only(args);
    return;
  }
  const IsaKernels& ks = select_kernels();
  if (args.m != 1 && prefer_transposed(args, ks)) {
    // Narrow C (n well below NR): compute C^T = B^T A^T so that the wide side of the micro-tile
    // runs along M.
    run_product(transposed_problem(args), args.bias, ks, max_threads);
    return;
  }
  if (prefer_transposed_via_scratch(args, ks)) {
    Sgemm t = transposed_problem(args);
    float* ct = thread_workspace().c_transposed.get(args.m * args.n);
    t.c = ct;
    t.c_rs = args.m;
    t.c_cs = 1;
    run_product(t, args.bias, ks, max_threads);
    transpose_into_c(ct, args, ks, max_threads);
    return;
  }
  run_product(args, nullptr, ks, max_threads);
}

// Whether a row-major A read in place with several K blocks is better copied, a K block at a time,
// into a contiguous m x kc matrix (run_by_k_slices): when A comes from memory (64 MiB and more,
// twice L3) with its rows a multiple of 8 KiB apart, and N is wide enough (2048) that the copy, one
// pass over A, costs ~1 % of the multiply-adds. The rows kernel then walks a contiguous slice
// (16 MiB at 4096^3, which L3 keeps across the N blocks) instead of 6 rows whose lines at each
// step all fall in the same cache sets. 1 thread, paired call by call on Zen 5: 4096^3
// 1.01-1.04x, 4096x4096x2048 1.01-1.03x, 8192x2048x2048 1.007x; 2 threads 1.01-1.02x at 4096^3.
// Without the aliasing it only costs the copy: 4000^3 0.99x, 4104^3 1.00x; nor does it pay where
// A fits L3 (2048^3 1.00x, 1024x4096x1024 0.99x), so those keep reading A in place.
bool prefer_k_slices(const Sgemm& g, const IsaKernels& ks) {
  if (g.a_cs != 1 || g.m < ks.mr || g.a_rs % 2048 != 0) return false;
  const int64_t kc_step = k_step(g, ks);
  constexpr int64_t kMinAFloats = int64_t{16} << 20;     // 64 MiB
  constexpr int64_t kMaxSliceFloats = int64_t{8} << 20;  // 32 MiB, kept by the calling thread
  return g.k > kc_step && g.n >= 2048 && g.m * g.k >= kMinAFloats && g.m * kc_step <= kMaxSliceFloats;
}

// C = A B as a sequence of single-K-block products, each over a copy of A's K slice with rows kc
// apart; each element of C still sees the same K blocks in the same order, so the result is the
// one the in-place product gives, bit for bit. beta applies to the first, the epilogue to the last.
void run_by_k_slices(const Sgemm& g, const float* row_bias, const IsaKernels& ks, int max_threads) {
  const int64_t kc_step = k_step(g, ks);
  float* slice = thread_workspace().a_slice.get(g.m * kc_step);
  for (int64_t pc = 0; pc < g.k; pc += kc_step) {
    const int64_t kc = std::min(kc_step, g.k - pc);
    const bool last = pc + kc == g.k;
    auto copy_rows = [&](int worker, int workers) {
      int64_t i0 = 0, i1 = 0;
      split_range(g.m, 1, worker, workers, &i0, &i1);
      for (int64_t i = i0; i < i1; ++i) std::memcpy(slice + i * kc, g.a + i * g.a_rs + pc, sizeof(float) * kc);
    };
    if (max_threads > 1) run_parallel(max_threads, copy_rows); else copy_rows(0, 1);
    Sgemm part = g;
    part.a = slice;
    part.a_rs = kc;
    part.k = kc;
    part.b = g.b + pc * g.b_rs;
    part.beta = pc == 0 ? g.beta : 1.0f;
    part.bias = last ? g.bias : nullptr;
    part.activation = last ? g.activation : Activation::None;
    run_product(part, last ? row_bias : nullptr, ks, max_threads);
  }
}

// One product with the micro-tile orientation decided (row_bias: see gemm_rectangle).
void run_product(const Sgemm& g, const float* row_bias, const IsaKernels& ks, int max_threads) {
  if (prefer_k_slices(g, ks)) {
    run_by_k_slices(g, row_bias, ks, max_threads);
    return;
  }
  if (g.m == 1 && (g.b_cs == 1 || g.b_rs == 1)) {
    gemv_path(g, row_bias, ks, max_threads);
    return;
  }
  const int64_t work = g.m * g.n * g.k;
  int threads = 1;
  if (max_threads > 1 && work >= kMinParallelWork) {
    threads = static_cast<int>(std::min<int64_t>(max_threads, std::max<int64_t>(1, work / kMinParallelWork)));
  }
  if (threads <= 1) {
    gemm_rectangle(g, row_bias, ks, 0, g.m, 0, g.n, 0);
    return;
  }
  const uint64_t call = g_product_count.fetch_add(1, std::memory_order_relaxed) + 1;
  const int64_t kc_step = k_step(g, ks), nc_step = n_step(g, ks, kc_step);
  const bool single_b_block = g.k <= kc_step && g.n <= nc_step;
  std::atomic<int> next_item{0};
  run_parallel(threads, [&](int, int workers) {
    // `workers` may be smaller than asked (a nested call runs inline with 1): plan for what we got.
    WorkSplit split = plan_split(g.m, g.n, g.k, ks.mr, ks.nr, workers);
    if (split.parts_n == 1 && single_b_block) {
      // Each thread packs B once (the cache in gemm_rectangle) whatever number of row bands it
      // takes: small bands cost nothing and even out the threads' finishing times.
      split.parts_m = static_cast<int>(std::min<int64_t>(ceil_div(g.m, ks.mr), 8 * workers));
    } else if (!single_b_block) {
      // With several K blocks every row band packs all of B (and every column band all of A),
      // which costs as much as a few percent of a short band's multiply-adds: one band per
      // thread (dW = dY^T X with K = 4096: 128-512 rows or columns).
      if (split.parts_n == 1 && g.m < 1024 * workers) split.parts_m = std::min(split.parts_m, workers);
      if (split.parts_m == 1 && g.n < 1024 * workers) split.parts_n = std::min(split.parts_n, workers);
      if (split.parts_m == 1 && g.a_cs == 1) {
        // Except a split of N with A read in place: a column band of one N block packs just that
        // block of B and reads A once for it, as a thread's wider band does block by block, so
        // bands of one N block each, claimed dynamically, cost nothing more, and a thread slowed
        // by another process on its core no longer holds up the product (2 threads on a busy
        // host, paired call by call: 1.00-1.06x at 512^3-4096^3, the MLP and the GPT shapes).
        split.parts_n = static_cast<int>(std::max<int64_t>(split.parts_n, ceil_div(g.n, nc_step)));
      }
    }
    for (;;) {
      const int item = next_item.fetch_add(1, std::memory_order_relaxed);
      if (item >= split.parts_m * split.parts_n) break;
      int64_t m0, m1, n0, n1;
      split_range(g.m, ks.mr, item / split.parts_n, split.parts_m, &m0, &m1);
      split_range(g.n, ks.nr, item % split.parts_n, split.parts_n, &n0, &n1);
      if (m0 < m1 && n0 < n1) gemm_rectangle(g, row_bias, ks, m0, m1, n0, n1, call);
    }
  });
}

}  // namespace

void merge_tile_scalar(const float* acc, int64_t acc_rs, float* c, int64_t c_rs, int64_t c_cs, int64_t rows,
                       int64_t cols, const TileEpilogue& ep) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < cols; ++j) {
      float* cp = c + r * c_rs + j * c_cs;
      const float a = acc[r * acc_rs + j];
      // Same operations as the SIMD merge: one rounding for alpha * acc + (beta * c).
      float v = ep.beta == 0.0f ? ep.alpha * a : std::fma(ep.alpha, a, ep.beta * *cp);
      if (ep.bias != nullptr) v += ep.bias[j];
      if (ep.row_bias != nullptr) v += ep.row_bias[r];
      *cp = activate(v, ep.activation);
    }
  }
}

void pack_steps_scalar(const float* src, int64_t stride, int rows, int64_t kc, int width, float* dst) {
  const int panels = static_cast<int>(ceil_div(rows, width));
  for (int64_t p = 0; p < kc; ++p) {
    for (int q = 0; q < panels; ++q) {
      float* d = dst + (q * kc + p) * width;
      for (int r = 0; r < width; ++r) d[r] = q * width + r < rows ? src[p * stride + q * width + r] : 0.0f;
    }
  }
}

void transpose_scalar(const float* src, int64_t src_rs, int64_t rows, int64_t cols, float* dst, int64_t dst_rs) {
  // 16 x 16 blocks, so that the lines of both sides are used whole.
  for (int64_t c0 = 0; c0 < cols; c0 += 16) {
    const int64_t c1 = std::min(cols, c0 + 16);
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
      const int64_t r1 = std::min(rows, r0 + 16);
      for (int64_t c = c0; c < c1; ++c) {
        for (int64_t r = r0; r < r1; ++r) dst[c * dst_rs + r] = src[r * src_rs + c];
      }
    }
  }
}

void pack_transposed_scalar(const float* src, int64_t stride, int rows, int64_t kc, int width, float* dst) {
  for (int r = 0; r < rows; ++r) {
    const float* row = src + r * stride;
    for (int64_t p = 0; p < kc; ++p) dst[p * width + r] = row[p];
  }
  for (int64_t p = 0; p < kc; ++p) {
    for (int r = rows; r < width; ++r) dst[p * width + r] = 0.0f;
  }
}

}  // namespace detail

void gelu_forward(const float* x, float* y, int64_t n) { detail::select_kernels().gelu_row(x, y, n); }

void gelu_backward(const float* dy, const float* z, float* dz, int64_t n) {
  detail::select_kernels().gelu_grad_row(dy, z, dz, n);
}

void sgemm(const Sgemm& args) {
  detail::validate(args, "sgemm");
  flops::add(static_cast<uint64_t>(2 * args.m * args.n * args.k));
  detail::sgemm_with_threads(args, num_threads());
}

void sgemm_batched(const Sgemm& args, int64_t count, const int64_t* a_offsets, const int64_t* b_offsets,
                   const int64_t* c_offsets) {
  check(count >= 0, Code::InvalidArgument, "sgemm_batched: negative count ", count);
  detail::validate(args, "sgemm_batched");
  if (count == 0 || args.m == 0 || args.n == 0) return;
  flops::add(static_cast<uint64_t>(2 * count * args.m * args.n * args.k));
  check(a_offsets != nullptr && b_offsets != nullptr && c_offsets != nullptr, Code::InvalidArgument,
        "sgemm_batched: null offsets");
  auto item = [&](int64_t i) {
    Sgemm g = args;
    g.a = args.a != nullptr ? args.a + a_offsets[i] : nullptr;
    g.b = args.b != nullptr ? args.b + b_offsets[i] : nullptr;
    g.c = args.c + c_offsets[i];
    return g;
  };
  const int threads = num_threads();
  const int64_t work = args.m * args.n * args.k;
  // Small products: one thread per group of items (no synchronisation inside a product).
  // Large products: one after another, each using every thread.
  if (threads > 1 && count > 1 && work < 4 * detail::kMinParallelWork) {
    const int workers = static_cast<int>(std::min<int64_t>(threads, count));
    run_parallel(workers, [&](int worker, int ws) {
      const int64_t begin = count * worker / ws, end = count * (worker + 1) / ws;
      for (int64_t i = begin; i < end; ++i) detail::sgemm_with_threads(item(i), 1);
    });
    return;
  }
  for (int64_t i = 0; i < count; ++i) detail::sgemm_with_threads(item(i), threads);
}

void sgemm_reference(const Sgemm& g) {
  detail::validate(g, "sgemm_reference");
  for (int64_t i = 0; i < g.m; ++i) {
    for (int64_t j = 0; j < g.n; ++j) {
      float* cp = g.c + i * g.c_rs + j * g.c_cs;
      float v;
      if (g.k == 0) {
        v = g.beta == 0.0f ? 0.0f : g.beta * *cp;
      } else {
        float acc = 0.0f;
        for (int64_t p = 0; p < g.k; ++p) acc += g.a[i * g.a_rs + p * g.a_cs] * g.b[p * g.b_rs + j * g.b_cs];
        v = g.beta == 0.0f ? g.alpha * acc : g.alpha * acc + g.beta * *cp;
      }
      if (g.bias != nullptr) v += g.bias[j];
      *cp = detail::activate(v, g.activation);
    }
  }
}

}  // namespace joule::gemm
