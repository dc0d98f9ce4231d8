// The attention kernels, written once over GCC vector extensions and compiled once per ISA:
// attention.cpp includes this with JOULE_ATTN_VW = 4 (SSE2, the portable baseline of x86-64 and
// plain scalar code elsewhere), attention_x86.cpp with 8 (AVX2 + FMA) and 16 (AVX-512) under
// `#pragma GCC target`. The includer opens the namespace and has included <algorithm>, <cmath>,
// <cstdint>, <cstring>, <limits>, <utility> and <vector> (no std header may be included under a
// target pragma).
//
// Tiled kernels (forward with Tq > kDecodeMaxTq, backward), per (b, h): K (and V, backward) are
// transposed once into [D][Tkp] (VW x VW blocks through registers) for the score dot products,
// whose vector lanes run over keys; the accumulations (P V, dS K, P^T dO, dS^T Q) run their lanes
// over the head dim and read V and K rows where they are when D is a whole number of vectors
// (else copies zero-padded to Dp). Query rows are processed kRows = 8 at a time against key
// blocks of kBlock keys; the forward keeps an online softmax per row (running max m and sum l, the
// accumulator rescaled by exp(m_old - m_new)); the backward recomputes P from the saved log-sum-exp
// (see backward_head). Scratch is O(T * D) per (b, h), never a T x T matrix, and lives in
// per-thread buffers reused from call to call.
//
// Every micro-kernel keeps a register block of accumulators and streams the third dimension:
// scores 8 rows x 2 key vectors over d (AVX-512; 4 x 2 with 16 registers), the head-dim sums
// 8 rows (or keys) x 2 vectors over keys (or rows), with each broadcast a single load.
//
// Causal: query i sees keys j <= i + Tk - Tq. A masked (row, key) pair takes no part in any sum,
// so no value of a key a row does not see (an inf or NaN included) reaches that row's output or
// gradient; the causal diagonal inside a tile takes a per-row bound instead of 0 * x.
//
// Decode (forward with Tq <= kDecodeMaxTq, the KV-cache step: one new query over the whole cache):
// transposing and re-padding K and V for every call cost ~100x the arithmetic (a heap allocation
// and an O(Tk * D) copy per head, for Tq * Tk * D multiply-adds), so decode_head reads the K and V
// rows where they are, with the vector lanes over the head dim: q . k_j for four keys at a time
// folded by one 4 x 4 transposed sum, p . v accumulated in registers. Same 128-key blocks and the
// same online-softmax steps as forward_head, so masking, empty rows and NaN behave identically.

#ifndef JOULE_ATTN_VW
#error "define JOULE_ATTN_VW before including attention_impl.h"
#endif

constexpr int VW = JOULE_ATTN_VW;
typedef float vf __attribute__((vector_size(VW * 4)));
typedef int32_t vi __attribute__((vector_size(VW * 4)));
typedef float vfu __attribute__((vector_size(VW * 4), aligned(4)));

constexpr int kRows = 8;                    // query rows per tile
constexpr int kBlock = 128;                 // keys per online-softmax block (a multiple of VW)
constexpr int kMaxNv = 256 / VW;            // head-dim vectors at the largest head size
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

static inline vf ld(const float* p) { return *reinterpret_cast<const vfu*>(p); }
static inline void st(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }
// A broadcast: s - 0 is s for every s (also -0), so it compiles to one load-port broadcast;
// 0 + s would cost an add on top, as -0 + 0 is +0.
static inline vf bc(float s) { return s - vf{}; }
static inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// exp(x) for a vector: 2^n * p(f), n = round(x log2 e), f = x - n ln 2, p of degree 6
// (relative error ~1e-7 on [-ln2/2, ln2/2]). x <= -88 (and -inf) gives 0; NaN stays NaN.
static inline vf vexp(vf x) {
  x = x < bc(-88.f) ? bc(-88.f) : x;
  x = x > bc(88.f) ? bc(88.f) : x;
  const vf t = x * 1.44269504088896341f;
  const vf n = (t + 12582912.f) - 12582912.f;  // round to nearest (|t| < 2^22)
  vf f = x - n * 0.693145751953125f;
  f = f - n * 1.428606765330187e-06f;
  vf p = bc(1.f / 720);
  p = p * f + 1.f / 120;
  p = p * f + 1.f / 24;
  p = p * f + 1.f / 6;
  p = p * f + 0.5f;
  p = p * f + 1.f;
  p = p * f + 1.f;
  const vi e = (__builtin_convertvector(n, vi) + 127) << 23;
  const vf scale = (vf)e;  // same-size vector cast: a bit reinterpretation
  // n = -127 (x = -88 clamp) has exponent 0: 0 * p = 0 (a denormal would be < 1e-38 anyway).
  return p * scale;
}

static inline float hmax(vf v) {
  float m = v[0];
  for (int i = 1; i < VW; ++i) m = std::max(m, v[i]);
  return m;
}
static inline float hsum(vf v) {
  float s = 0;
  for (int i = 0; i < VW; ++i) s += v[i];
  return s;
}

struct Head {
  const float* q;
  const float* k;
  const float* v;
  int64_t qs, ks, vs;  // row strides
};

static inline Head head_of(const AttentionArgs& a, int64_t bh) {
  const int64_t b = bh / a.H, h = bh % a.H;
  return {a.q + b * a.q_s[0] + h * a.q_s[1], a.k + b * a.k_s[0] + h * a.k_s[1], a.v + b * a.v_s[0] + h * a.v_s[1],
          a.q_s[2], a.k_s[2], a.v_s[2]};
}

// __builtin_shufflevector: GCC 12+ and clang; older compilers take scalar loops (transposes,
// reductions, fold4, sum4).
#if !defined(JOULE_ATTN_SHUFFLE) && !defined(JOULE_ATTN_NO_SHUFFLE) && \
    (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12))
#define JOULE_ATTN_SHUFFLE 1
#endif

// ---- Tiled kernels (forward for Tq > kDecodeMaxTq, backward) -------------------------------

// Register blocking. AVX-512 has 32 vector registers: 8 x 2 accumulators (16) plus the loads; the
// 16-register ISAs take 4 x 2. Each micro-kernel step then does 16 (8) FMAs for 10 (6) loads.
constexpr int kQR = VW >= 16 ? 8 : 4;  // scores: query rows per call (x 2 key vectors)
constexpr int kAR = VW >= 16 ? 8 : 4;  // rows x head dim: query rows per call (x kG vectors)
constexpr int kKJ = VW >= 16 ? 8 : 4;  // keys x head dim (backward dK, dV): keys per call (x kG vectors)
constexpr int kG = 2;                  // head-dim vectors per accumulating call
constexpr int kChunk = 32;             // backward: query rows whose P and dS are kept per key block
static_assert(kRows % kQR == 0 && kRows % kAR == 0 && kChunk % kRows == 0, "tile sizes");
static_assert(kBlock % VW == 0 && kBlock % kKJ == 0, "block size");


// Lane indices 0, 1, ..., VW - 1.
static inline vi lane_index() {
  vi r;
  for (int i = 0; i < VW; ++i) r[i] = i;
  return r;
}

#ifdef JOULE_ATTN_SHUFFLE
using Lanes = std::make_integer_sequence<int, VW>;
// v rotated by H lanes.
template <int H, int... L>
static inline vf rotate(vf v, std::integer_sequence<int, L...>) {
  return __builtin_shufflevector(v, v, ((L + H) % VW)...);
}
static inline vf vmax(vf a, vf b) { return a > b ? a : b; }
// Max / sum of the lanes in log2(VW) shuffle steps: hmax and hsum are chains of VW dependent
// scalar operations, which at 8 rows per tile took a quarter of the forward's time. tree_max is
// for vectors without NaN (the running maxima never take one).
static inline float tree_max(vf v) {
  if constexpr (VW >= 16) v = vmax(v, rotate<8>(v, Lanes{}));
  if constexpr (VW >= 8) v = vmax(v, rotate<4>(v, Lanes{}));
  v = vmax(v, rotate<2>(v, Lanes{}));
  v = vmax(v, rotate<1>(v, Lanes{}));
  return v[0];
}
static inline float tree_sum(vf v) {
  if constexpr (VW >= 16) v += rotate<8>(v, Lanes{});
  if constexpr (VW >= 8) v += rotate<4>(v, Lanes{});
  v += rotate<2>(v, Lanes{});
  v += rotate<1>(v, Lanes{});
  return v[0];
}
#else
static inline float tree_max(vf v) { return hmax(v); }
static inline float tree_sum(vf v) { return hsum(v); }
#endif

// Prefetches into L2 the cache lines of rows [r0, r1) (D floats each, rs apart) of base: the next
// head's inputs are fetched while this one computes. In GPT training q, k and v are strided views
// of the qkv projection (rows 1.5 KiB apart, 6 MB in all at B = 32, so in L3); measured there,
// 1 thread: the forward and backward took 10-15 % longer without it.
template <bool kWrite>
static inline void prefetch_rows(const float* base, int64_t rs, int64_t r0, int64_t r1, int64_t D) {
  for (int64_t r = r0; r < r1; ++r) {
    const uintptr_t first = reinterpret_cast<uintptr_t>(base + r * rs) & ~static_cast<uintptr_t>(63);
    const uintptr_t last = reinterpret_cast<uintptr_t>(base + r * rs + D - 1);
    for (uintptr_t line = first; line <= last; line += 64)
      __builtin_prefetch(reinterpret_cast<const void*>(line), kWrite ? 1 : 0, 2);
  }
}

// Fetches head bh's rows (bh < 0: none) in steps spread over the current head's work: upto(f)
// prefetches the first fraction f of the query rows and of the key rows of every tensor the
// forward (backward) reads and writes. Spread in proportion to work, not per tile: a causal
// head's first tiles are short, and a burst of prefetches waits for free fill buffers.
struct Prefetcher {
  const AttentionArgs& a;
  int64_t bh;
  bool backward;
  int64_t qdone = 0, kdone = 0;

  void upto(double f) {
    if (bh < 0) return;
    const int64_t q1 = std::min(a.Tq, static_cast<int64_t>(f * a.Tq + 0.999));
    const int64_t k1 = std::min(a.Tk, static_cast<int64_t>(f * a.Tk + 0.999));
    const int64_t q0 = qdone, k0 = kdone;
    if (q1 <= q0 && k1 <= k0) return;
    qdone = std::max(q0, q1);
    kdone = std::max(k0, k1);
    const int64_t b = bh / a.H, h = bh % a.H;
    auto base = [&](const float* p, const int64_t* s) { return p + b * s[0] + h * s[1]; };
    prefetch_rows<false>(base(a.q, a.q_s), a.q_s[2], q0, q1, a.D);
    prefetch_rows<false>(base(a.k, a.k_s), a.k_s[2], k0, k1, a.D);
    prefetch_rows<false>(base(a.v, a.v_s), a.v_s[2], k0, k1, a.D);
    if (!backward) {
      prefetch_rows<true>(base(a.o, a.o_s), a.o_s[2], q0, q1, a.D);
      return;
    }
    prefetch_rows<false>(base(a.o, a.o_s), a.o_s[2], q0, q1, a.D);
    prefetch_rows<false>(base(a.dout, a.do_s), a.do_s[2], q0, q1, a.D);
    prefetch_rows<true>(base(a.dq, a.dq_s), a.dq_s[2], q0, q1, a.D);
    prefetch_rows<true>(base(a.dk, a.dk_s), a.dk_s[2], k0, k1, a.D);
    prefetch_rows<true>(base(a.dv, a.dv_s), a.dv_s[2], k0, k1, a.D);
  }
};

// A growable buffer whose data starts on a cache line, one set per thread (thread_scratch):
// allocated on first use and reused by every later call, not per call or per head.
struct Buf {
  std::vector<float> v;
  float* get(int64_t n) {
    const size_t need = static_cast<size_t>(n) + 16;
    if (v.size() < need) v.resize(need);
    const uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
    return reinterpret_cast<float*>((p + 63) & ~static_cast<uintptr_t>(63));
  }
  // Gives back a buffer a long sequence grew past `floats` (the common shapes stay allocated).
  void trim(size_t floats) {
    if (v.capacity() > floats) std::vector<float>().swap(v);
  }
};

struct Scratch {
  Buf kt, vt, kp, vp, qt, ot, sc, qc, dc, dqc, dk, dv, p, ds, row;
  void trim() {
    constexpr size_t kKeep = size_t{1} << 18;  // 1 MiB per buffer
    for (Buf* b : {&kt, &vt, &kp, &vp, &qt, &ot, &sc, &qc, &dc, &dqc, &dk, &dv, &p, &ds, &row}) b->trim(kKeep);
  }
};

static inline Scratch& thread_scratch() {
  static thread_local Scratch s;
  return s;
}

static inline void copy_row(float* dst, const float* src, int64_t D) {
  int64_t d = 0;
  for (; d + VW <= D; d += VW) st(dst + d, ld(src + d));
  for (; d < D; ++d) dst[d] = src[d];
}

// dst row j (Dp floats, zero past D) = src row j (stride ss, D floats), for j < n.
static inline void pack_rows(const float* src, int64_t ss, int64_t n, int64_t D, float* dst, int64_t Dp) {
  for (int64_t j = 0; j < n; ++j) {
    float* o = dst + j * Dp;
    copy_row(o, src + j * ss, D);
    for (int64_t d = D; d < Dp; ++d) o[d] = 0.f;
  }
}

#ifdef JOULE_ATTN_SHUFFLE
// VW x VW transpose in log2(VW) butterfly steps: step K exchanges bit K of the row index with bit
// K of the lane index between rows r and r + 2^K (VW two-source shuffles per step).
template <int K, int... L>
static inline vf tr_lo(vf a, vf b, std::integer_sequence<int, L...>) {
  return __builtin_shufflevector(a, b, (((L >> K) & 1) ? VW + L - (1 << K) : L)...);
}
template <int K, int... L>
static inline vf tr_hi(vf a, vf b, std::integer_sequence<int, L...>) {
  return __builtin_shufflevector(a, b, (((L >> K) & 1) ? VW + L : L + (1 << K))...);
}
template <int K>
static inline void tr_steps(vf* m) {
  if constexpr ((1 << K) < VW) {
    constexpr int h = 1 << K;
    for (int r = 0; r < VW; ++r) {
      if (r & h) continue;
      const vf a = m[r], b = m[r + h];
      m[r] = tr_lo<K>(a, b, Lanes{});
      m[r + h] = tr_hi<K>(a, b, Lanes{});
    }
    tr_steps<K + 1>(m);
  }
}
#endif

// dst[d * ldd + j] = src[j * ss + d] for j < n, d < D, and 0 for n <= j < round_up(n, VW). Whole
// VW x VW blocks go through registers (shuffles); the rest by 16 keys (one cache line of dst) at
// a time: a plain loop over j stores with a stride of ldd floats, 4 KiB for Tk = 1024, so every
// store of a column maps to the same L1 set and misses.
static inline void transpose_keys(const float* src, int64_t ss, int64_t n, int64_t D, float* dst, int64_t ldd) {
  int64_t j0 = 0;
#ifdef JOULE_ATTN_SHUFFLE
  const int64_t Dv = D / VW * VW;
  for (; j0 + VW <= n; j0 += VW) {
    const float* s0 = src + j0 * ss;
    for (int64_t d0 = 0; d0 < Dv; d0 += VW) {
      vf m[VW];
      for (int i = 0; i < VW; ++i) m[i] = ld(s0 + i * ss + d0);
      tr_steps<0>(m);
      for (int i = 0; i < VW; ++i) st(dst + (d0 + i) * ldd + j0, m[i]);
    }
    for (int64_t d = Dv; d < D; ++d) {
      for (int i = 0; i < VW; ++i) dst[d * ldd + j0 + i] = s0[i * ss + d];
    }
  }
#endif
  constexpr int64_t kJ = 16;
  for (; j0 < n; j0 += kJ) {
    const int64_t jn = std::min<int64_t>(kJ, n - j0);
    const float* s0 = src + j0 * ss;
    for (int64_t d = 0; d < D; ++d) {
      float* row = dst + d * ldd + j0;
      for (int64_t j = 0; j < jn; ++j) row[j] = s0[j * ss + d];
    }
  }
  const int64_t np = round_up(n, VW);
  for (int64_t d = 0; d < D; ++d) {
    for (int64_t j = n; j < np; ++j) dst[d * ldd + j] = 0.f;
  }
}

// out[r * ldo + j] = mul * sum_{d < D} A[r * lda + d] * bt[d * ldb + j] for r < RR, j < nvec * VW:
// lanes over keys, A's entries broadcast, two key vectors at a time (then one). kMax (the forward):
// also out = -inf for j >= vis[r] (masked keys) and mx[r] = the lane-wise running max of row r
// (NaN never wins), saving the softmax a pass over the scores.
template <int RR, bool kMax>
static inline void scores(const float* A, int64_t lda, const float* bt, int64_t ldb, int64_t nvec, int64_t D, float mul,
                          float* out, int64_t ldo, const int* vis = nullptr, vf* mx = nullptr) {
  const vi lanes = lane_index();
  auto finish = [&](int r, int64_t v, vf x) {
    if constexpr (kMax) {
      const int j = static_cast<int>(v * VW);
      if (j + VW > vis[r]) x = lanes + j < vis[r] ? x : bc(kNegInf);
      mx[r] = x > mx[r] ? x : mx[r];
    }
    st(out + r * ldo + v * VW, x);
  };
  int64_t v = 0;
  for (; v + 2 <= nvec; v += 2) {
    vf c0[RR], c1[RR];
    for (int r = 0; r < RR; ++r) c0[r] = c1[r] = vf{};
    const float* col = bt + v * VW;
    for (int64_t d = 0; d < D; ++d, col += ldb) {
      const vf k0 = ld(col), k1 = ld(col + VW);
      for (int r = 0; r < RR; ++r) {
        const vf x = bc(A[r * lda + d]);
        c0[r] += x * k0;
        c1[r] += x * k1;
      }
    }
    for (int r = 0; r < RR; ++r) {
      finish(r, v, c0[r] * mul);
      finish(r, v + 1, c1[r] * mul);
    }
  }
  if (v < nvec) {
    vf c0[RR];
    for (int r = 0; r < RR; ++r) c0[r] = vf{};
    const float* col = bt + v * VW;
    for (int64_t d = 0; d < D; ++d, col += ldb) {
      const vf k0 = ld(col);
      for (int r = 0; r < RR; ++r) c0[r] += bc(A[r * lda + d]) * k0;
    }
    for (int r = 0; r < RR; ++r) finish(r, v, c0[r] * mul);
  }
}

// O[r * ldo + g * VW + i] += sum_j P[r * ldp + j] * X[j * ldx + g * VW + i] for r < RR, g < G:
// every row takes keys j < jfull; row r takes the keys jfull <= j < je below lim[r] only (the
// causal diagonal: a masked key's row of X never reaches the row, not even as 0 * x).
template <int RR, int G>
static inline void accum_rows(const float* P, int64_t ldp, const float* X, int64_t ldx, int64_t jfull, int64_t je,
                              const int64_t* lim, float* O, int64_t ldo) {
  vf acc[RR][G];
  for (int r = 0; r < RR; ++r)
    for (int g = 0; g < G; ++g) acc[r][g] = ld(O + r * ldo + g * VW);
  int64_t j = 0;
  for (; j < jfull; ++j) {
    vf x[G];
    for (int g = 0; g < G; ++g) x[g] = ld(X + j * ldx + g * VW);
    for (int r = 0; r < RR; ++r) {
      const vf p = bc(P[r * ldp + j]);
      for (int g = 0; g < G; ++g) acc[r][g] += p * x[g];
    }
  }
  for (; j < je; ++j) {
    vf x[G];
    for (int g = 0; g < G; ++g) x[g] = ld(X + j * ldx + g * VW);
    for (int r = 0; r < RR; ++r) {
      if (j >= lim[r]) continue;
      const vf p = bc(P[r * ldp + j]);
      for (int g = 0; g < G; ++g) acc[r][g] += p * x[g];
    }
  }
  for (int r = 0; r < RR; ++r)
    for (int g = 0; g < G; ++g) st(O + r * ldo + g * VW, acc[r][g]);
}

template <int RR>
static inline void accum_rows_all(const float* P, int64_t ldp, const float* X, int64_t ldx, int64_t jfull, int64_t je,
                                  const int64_t* lim, float* O, int64_t ldo, int nv) {
  int g = 0;
  for (; g + kG <= nv; g += kG) accum_rows<RR, kG>(P, ldp, X + g * VW, ldx, jfull, je, lim, O + g * VW, ldo);
  for (; g < nv; ++g) accum_rows<RR, 1>(P, ldp, X + g * VW, ldx, jfull, je, lim, O + g * VW, ldo);
}

// A[jj * lda + g * VW + i] += sum_r P[r * ldp + jj] * Y[r * ldy + g * VW + i] for jj < min(J, vmax),
// g < G over the rows rb <= r < re, of which those below rfull see only their first
// min(vis0 + r * vstep, vmax) of the J keys (the others are masked for them and contribute
// nothing). Rows of A past vmax (keys past the end) are neither read nor written.
template <int J, int G>
static inline void accum_keys(const float* P, int64_t ldp, const float* Y, int64_t ldy, int64_t rb, int64_t rfull,
                              int64_t re, int64_t vis0, int64_t vstep, int64_t vmax, float* A, int64_t lda) {
  vf acc[J][G];
  for (int jj = 0; jj < J; ++jj)
    for (int g = 0; g < G; ++g) acc[jj][g] = jj < vmax ? ld(A + jj * lda + g * VW) : vf{};
  int64_t r = rb;
  for (; r < rfull; ++r) {
    const int64_t nvis = std::min(vis0 + r * vstep, vmax);
    vf y[G];
    for (int g = 0; g < G; ++g) y[g] = ld(Y + r * ldy + g * VW);
    for (int jj = 0; jj < J; ++jj) {
      if (jj >= nvis) break;
      const vf p = bc(P[r * ldp + jj]);
      for (int g = 0; g < G; ++g) acc[jj][g] += p * y[g];
    }
  }
  for (; r < re; ++r) {
    vf y[G];
    for (int g = 0; g < G; ++g) y[g] = ld(Y + r * ldy + g * VW);
    for (int jj = 0; jj < J; ++jj) {
      const vf p = bc(P[r * ldp + jj]);
      for (int g = 0; g < G; ++g) acc[jj][g] += p * y[g];
    }
  }
  for (int jj = 0; jj < J && jj < vmax; ++jj)
    for (int g = 0; g < G; ++g) st(A + jj * lda + g * VW, acc[jj][g]);
}

template <int J>
static inline void accum_keys_all(const float* P, int64_t ldp, const float* Y, int64_t ldy, int64_t rb, int64_t rfull,
                                  int64_t re, int64_t vis0, int64_t vstep, int64_t vmax, float* A, int64_t lda,
                                  int nv) {
  int g = 0;
  for (; g + kG <= nv; g += kG)
    accum_keys<J, kG>(P, ldp, Y + g * VW, ldy, rb, rfull, re, vis0, vstep, vmax, A + g * VW, lda);
  for (; g < nv; ++g) accum_keys<J, 1>(P, ldp, Y + g * VW, ldy, rb, rfull, re, vis0, vstep, vmax, A + g * VW, lda);
}

// sum_d x[d] * y[d] accumulated in double.
typedef double vd __attribute__((vector_size(VW * 8)));
#ifdef JOULE_ATTN_SHUFFLE
// v += v rotated by H lanes (by reference: a double vector wider than the ISA's registers as a
// parameter or return value would draw GCC's ABI-change warning).
template <int H, int... L>
static inline void add_rotated(vd& v, std::integer_sequence<int, L...>) {
  v += __builtin_shufflevector(v, v, ((L + H) % VW)...);
}
#endif
static inline float dot_double(const float* x, const float* y, int64_t D) {
  vd acc = {};
  int64_t d = 0;
  for (; d + VW <= D; d += VW) acc += __builtin_convertvector(ld(x + d), vd) * __builtin_convertvector(ld(y + d), vd);
#ifdef JOULE_ATTN_SHUFFLE
  if constexpr (VW >= 16) add_rotated<8>(acc, Lanes{});
  if constexpr (VW >= 8) add_rotated<4>(acc, Lanes{});
  add_rotated<2>(acc, Lanes{});
  add_rotated<1>(acc, Lanes{});
  double s = acc[0];
#else
  double s = 0;
  for (int i = 0; i < VW; ++i) s += acc[i];
#endif
  for (; d < D; ++d) s += static_cast<double>(x[d]) * y[d];
  return static_cast<float>(s);
}

// The keys query row `row` sees: j < lim.
static inline int64_t key_limit(const AttentionArgs& a, int64_t row) {
  return a.causal ? std::max<int64_t>(0, std::min<int64_t>(a.Tk, row + a.Tk - a.Tq + 1)) : a.Tk;
}

template <int NV>
void forward_head(const AttentionArgs& a, int64_t bh, int64_t next, Scratch& s) {
  const int64_t D = a.D, Tq = a.Tq, Tk = a.Tk;
  const int nv = NV > 0 ? NV : static_cast<int>((D + VW - 1) / VW);
  const int64_t Dp = static_cast<int64_t>(nv) * VW;
  const int64_t Tkp = round_up(std::max<int64_t>(Tk, 1), VW);
  const Head hd = head_of(a, bh);
  float* kt = s.kt.get(D * Tkp);
  transpose_keys(hd.k, hd.ks, Tk, D, kt, Tkp);
  // V rows where they are when D is whole vectors, else copied with the head dim zero-padded.
  const float* vx = hd.v;
  int64_t vs = hd.vs;
  if (D != Dp) {
    float* vp = s.vp.get(Tk * Dp);
    pack_rows(hd.v, hd.vs, Tk, D, vp, Dp);
    vx = vp;
    vs = Dp;
  }
  // The query rows, packed for the whole head in one pass (independent loads, rather than a few
  // at a time between tiles); rows past the end repeat the last one (computed, not stored).
  float* qt = s.qt.get(round_up(Tq, kRows) * Dp);
  for (int64_t i = 0; i < round_up(Tq, kRows); ++i) copy_row(qt + i * Dp, hd.q + std::min(i, Tq - 1) * hd.qs, D);
  float* ot = s.ot.get(kRows * Dp);
  float* sc = s.sc.get(kRows * kBlock);
  const int64_t b = bh / a.H, h = bh % a.H;
  float* obase = a.o + b * a.o_s[0] + h * a.o_s[1];
  float* lse = a.lse + bh * Tq;
  // Work per tile ~ the keys it sees (+ 1 for a row tile that sees none).
  int64_t total = 0, done = 0;
  for (int64_t i0 = 0; i0 < Tq; i0 += kRows) total += key_limit(a, std::min(Tq, i0 + kRows) - 1) + 1;
  Prefetcher pf{a, next, false};
  for (int64_t i0 = 0; i0 < Tq; i0 += kRows) {
    done += key_limit(a, std::min(Tq, i0 + kRows) - 1) + 1;
    pf.upto(static_cast<double>(done) / total);
    const int rows = static_cast<int>(std::min<int64_t>(kRows, Tq - i0));
    int64_t lim[kRows], limr[kRows];
    float m[kRows], l[kRows];
    for (int r = 0; r < kRows; ++r) {
      lim[r] = key_limit(a, i0 + std::min(r, rows - 1));
      m[r] = kNegInf;
      l[r] = 0;
    }
    for (int64_t j = 0; j < kRows * Dp; j += VW) st(ot + j, vf{});
    const int64_t kend = lim[kRows - 1];
    for (int64_t kb = 0; kb < kend; kb += kBlock) {
      const int64_t n = std::min<int64_t>(kBlock, kend - kb);
      const int64_t nvec = (n + VW - 1) / VW;
      const int64_t width = nvec * VW;
      int vis[kRows];
      vf mx[kRows];
      for (int r = 0; r < kRows; ++r) {
        limr[r] = lim[r] - kb;
        vis[r] = static_cast<int>(std::max<int64_t>(0, std::min(limr[r], width)));
        mx[r] = bc(kNegInf);
      }
      // Scores, -inf where masked (causal, or past the block), and each row's max.
      for (int r0 = 0; r0 < kRows; r0 += kQR)
        scores<kQR, true>(qt + (i0 + r0) * Dp, Dp, kt + kb, Tkp, nvec, D, a.scale, sc + r0 * kBlock, kBlock, vis + r0,
                          mx + r0);
      // The per-row steps in separate loops over the rows: each row's reductions are a chain of
      // dependent shuffles, the rows' chains are independent and overlap.
      float mnew[kRows];
      vf sums[kRows];
      for (int r = 0; r < kRows; ++r) mnew[r] = std::max(m[r], tree_max(mx[r]));
      for (int r = 0; r < kRows; ++r) {
        float* row = sc + r * kBlock;
        sums[r] = vf{};
        if (mnew[r] == kNegInf) {
          // No visible key yet: p = 0 everywhere in this block.
          for (int64_t j = 0; j < width; j += VW) st(row + j, vf{});
          continue;
        }
        const vf mn = bc(mnew[r]);
        for (int64_t j = 0; j < width; j += VW) {
          const vf p = vexp(ld(row + j) - mn);
          st(row + j, p);
          sums[r] += p;
        }
      }
      for (int r = 0; r < kRows; ++r) {
        if (mnew[r] == kNegInf) continue;
        // While m was -inf the accumulator holds only 0 * v terms (0, or NaN): alpha = 0 would not change it.
        const bool first = m[r] == kNegInf;
        const float alpha = first ? 0.f : std::exp(m[r] - mnew[r]);
        l[r] = l[r] * alpha + tree_sum(sums[r]);
        m[r] = mnew[r];
        if (alpha != 1.f && !first) {
          const vf av = bc(alpha);
          for (int u = 0; u < nv; ++u) st(ot + r * Dp + u * VW, ld(ot + r * Dp + u * VW) * av);
        }
      }
      // Every key a row sees is accumulated, p = 0 included (0 * inf = NaN, as the decode path does).
      const int64_t jfull = std::max<int64_t>(0, std::min(limr[0], n));
      for (int r0 = 0; r0 < kRows; r0 += kAR)
        accum_rows_all<kAR>(sc + r0 * kBlock, kBlock, vx + kb * vs, vs, jfull, n, limr + r0, ot + r0 * Dp, Dp, nv);
    }
    for (int r = 0; r < rows; ++r) {
      float* orow = obase + (i0 + r) * a.o_s[2];
      if (l[r] == 0.f) {
        std::memset(orow, 0, sizeof(float) * D);
        lse[i0 + r] = kNegInf;
        continue;
      }
      const vf inv = bc(1.f / l[r]);
      float* acc = ot + r * Dp;
      for (int u = 0; u < nv; ++u) st(acc + u * VW, ld(acc + u * VW) * inv);
      copy_row(orow, acc, D);
      lse[i0 + r] = m[r] + std::log(l[r]);
    }
  }
}

// The backward of one (b, h), FlashAttention-2's recomputation from the log-sum-exp, by chunks of
// kChunk query rows and blocks of kBlock keys: per tile of kRows rows (phase A) S = Q K^T and
// dP = dO V^T (lanes over keys, from K^T and V^T), P = exp(S - lse), dS = P (dP - delta) scale,
// dQ += dS K (lanes over the head dim); then per kKJ keys of the block (phase B) dV += P^T dO and
// dK += dS^T Q over the chunk's rows, with the keys' accumulators in registers. Masked (row, key)
// pairs are never read: each sum runs over the keys a row sees (the rows that see a key).
template <int NV>
void backward_head(const AttentionArgs& a, int64_t bh, int64_t next, Scratch& s) {
  const int64_t D = a.D, Tq = a.Tq, Tk = a.Tk;
  const int nv = NV > 0 ? NV : static_cast<int>((D + VW - 1) / VW);
  const int64_t Dp = static_cast<int64_t>(nv) * VW;
  const int64_t Tkp = round_up(std::max<int64_t>(Tk, 1), VW);
  const Head hd = head_of(a, bh);
  const int64_t b = bh / a.H, h = bh % a.H;
  const int64_t offset = Tk - Tq;
  float* kt = s.kt.get(D * Tkp);
  float* vt = s.vt.get(D * Tkp);
  transpose_keys(hd.k, hd.ks, Tk, D, kt, Tkp);
  transpose_keys(hd.v, hd.vs, Tk, D, vt, Tkp);
  const float* kx = hd.k;
  int64_t ks = hd.ks;
  if (D != Dp) {
    float* kp = s.kp.get(Tk * Dp);
    pack_rows(hd.k, hd.ks, Tk, D, kp, Dp);
    kx = kp;
    ks = Dp;
  }
  // dK and dV accumulate in place when D is whole vectors (rows zeroed first: the targets are
  // overwritten), else in zero-padded scratch copied out at the end. Not in a broadcast target
  // (a zero stride: rows shared between keys or heads), where each row's last write has to win.
  float* dkbase = a.dk + b * a.dk_s[0] + h * a.dk_s[1];
  float* dvbase = a.dv + b * a.dv_s[0] + h * a.dv_s[1];
  auto distinct = [&](const int64_t* st) {
    return (st[0] != 0 || a.B == 1) && (st[1] != 0 || a.H == 1) && (st[2] != 0 || Tk == 1);
  };
  const bool direct = D == Dp && distinct(a.dk_s) && distinct(a.dv_s);
  float* dka = direct ? dkbase : s.dk.get(Tk * Dp);
  float* dva = direct ? dvbase : s.dv.get(Tk * Dp);
  const int64_t ldk = direct ? a.dk_s[2] : Dp, ldv = direct ? a.dv_s[2] : Dp;
  for (int64_t j = 0; j < Tk; ++j) {
    for (int64_t d = 0; d < Dp; d += VW) {
      st(dka + j * ldk + d, vf{});
      st(dva + j * ldv + d, vf{});
    }
  }
  const float* obase = a.o + b * a.o_s[0] + h * a.o_s[1];
  const float* dobase = a.dout + b * a.do_s[0] + h * a.do_s[1];
  float* dqbase = a.dq + b * a.dq_s[0] + h * a.dq_s[1];
  const float* lse = a.lse + bh * Tq;
  // Per row: delta = dO . O (in double) and the log-sum-exp, +inf for a row that saw no key
  // (p = exp(s - inf) = 0).
  float* delta = s.row.get(2 * Tq);
  float* lr = delta + Tq;
  for (int64_t i = 0; i < Tq; ++i) {
    delta[i] = dot_double(dobase + i * a.do_s[2], obase + i * a.o_s[2], D);
    lr[i] = lse[i] == kNegInf ? std::numeric_limits<float>::infinity() : lse[i];
  }
  int64_t total = 0, done = 0;
  for (int64_t i0 = 0; i0 < Tq; i0 += kRows) total += key_limit(a, std::min(Tq, i0 + kRows) - 1) + 1;
  Prefetcher pf{a, next, true};
  float* qc = s.qc.get(kChunk * Dp);
  float* dc = s.dc.get(kChunk * Dp);
  float* dqc = s.dqc.get(kChunk * Dp);
  float* pb = s.p.get(kChunk * kBlock);
  float* db = s.ds.get(kChunk * kBlock);
  for (int64_t c0 = 0; c0 < Tq; c0 += kChunk) {
    const int64_t crows = std::min<int64_t>(kChunk, Tq - c0);
    const int64_t ctiles = (crows + kRows - 1) / kRows;
    // The chunk's Q and dO rows, zero-padded; rows past the end repeat the last one (computed in
    // phase A, never used).
    for (int64_t r = 0; r < ctiles * kRows; ++r) {
      const int64_t row = c0 + std::min(r, crows - 1);
      copy_row(qc + r * Dp, hd.q + row * hd.qs, D);
      copy_row(dc + r * Dp, dobase + row * a.do_s[2], D);
      for (int64_t d = D; d < Dp; ++d) qc[r * Dp + d] = dc[r * Dp + d] = 0.f;
    }
    std::memset(dqc, 0, sizeof(float) * ctiles * kRows * Dp);
    const int64_t ckend = key_limit(a, c0 + crows - 1);
    for (int64_t kb = 0; kb < ckend; kb += kBlock) {
      const int64_t cn = std::min<int64_t>(kBlock, ckend - kb);
      for (int64_t t = 0; t < ctiles; ++t) {
        const int64_t i0 = c0 + t * kRows;
        if (kb == 0) {
          done += key_limit(a, std::min(Tq, i0 + kRows) - 1) + 1;
          pf.upto(static_cast<double>(done) / total);
        }
        const int rows = static_cast<int>(std::min<int64_t>(kRows, Tq - i0));
        int64_t limr[kRows];
        for (int r = 0; r < kRows; ++r) limr[r] = key_limit(a, i0 + std::min(r, rows - 1)) - kb;
        const int64_t tn = std::max<int64_t>(0, std::min<int64_t>(limr[kRows - 1], cn));
        if (tn == 0) continue;
        const int64_t tvec = (tn + VW - 1) / VW;
        float* pt = pb + t * kRows * kBlock;
        float* dt = db + t * kRows * kBlock;
        const float* qt = qc + t * kRows * Dp;
        const float* dot = dc + t * kRows * Dp;
        for (int r0 = 0; r0 < kRows; r0 += kQR) {
          scores<kQR, false>(qt + r0 * Dp, Dp, kt + kb, Tkp, tvec, D, a.scale, pt + r0 * kBlock, kBlock);
          scores<kQR, false>(dot + r0 * Dp, Dp, vt + kb, Tkp, tvec, D, 1.f, dt + r0 * kBlock, kBlock);
        }
        for (int r = 0; r < kRows; ++r) {
          const int64_t row = i0 + std::min(r, rows - 1);
          const vf lv = bc(lr[row]), dl = bc(delta[row]);
          float* pr = pt + r * kBlock;
          float* dr = dt + r * kBlock;
          // Only the keys the row sees are ever read back.
          const int64_t vis = std::max<int64_t>(0, std::min(limr[r], tn));
          for (int64_t j = 0; j < vis; j += VW) {
            const vf p = vexp(ld(pr + j) - lv);
            st(pr + j, p);                                     // p
            st(dr + j, p * (ld(dr + j) - dl) * a.scale);        // ds, scale folded in
          }
        }
        const int64_t jfull = std::max<int64_t>(0, std::min(limr[0], tn));
        for (int r0 = 0; r0 < kRows; r0 += kAR)
          accum_rows_all<kAR>(dt + r0 * kBlock, kBlock, kx + kb * ks, ks, jfull, tn, limr + r0,
                              dqc + (t * kRows + r0) * Dp, Dp, nv);
      }
      // Row r of the chunk sees min(vis0 + r * vstep, Tk - j0) of the keys from j0 on.
      for (int64_t j0 = kb; j0 < kb + cn; j0 += kKJ) {
        const int64_t vmax = Tk - j0;
        const int64_t vis0 = a.causal ? c0 + offset + 1 - j0 : vmax;
        const int64_t vstep = a.causal ? 1 : 0;
        const int64_t rb = a.causal ? std::max<int64_t>(0, std::min<int64_t>(crows, 1 - vis0)) : 0;
        const int64_t rfull =
            vmax < kKJ ? crows : a.causal ? std::max<int64_t>(rb, std::min<int64_t>(crows, kKJ - vis0)) : rb;
        accum_keys_all<kKJ>(pb + (j0 - kb), kBlock, dc, Dp, rb, rfull, crows, vis0, vstep, vmax, dva + j0 * ldv, ldv,
                            nv);
        accum_keys_all<kKJ>(db + (j0 - kb), kBlock, qc, Dp, rb, rfull, crows, vis0, vstep, vmax, dka + j0 * ldk, ldk,
                            nv);
      }
    }
    for (int64_t r = 0; r < crows; ++r) copy_row(dqbase + (c0 + r) * a.dq_s[2], dqc + r * Dp, D);
  }
  if (direct) return;
  for (int64_t j = 0; j < Tk; ++j) {
    copy_row(dkbase + j * a.dk_s[2], dka + j * Dp, D);
    copy_row(dvbase + j * a.dv_s[2], dva + j * Dp, D);
  }
}

// ---- Decode path ----------------------------------------------------------------------------

// Query rows up to which the forward takes decode_head (rows are independent there, so any Tq
// is correct). Measured on 1 thread, B = 1, H = 4, causal, D = 32, AVX-512, against the tiled
// kernel with 8-row tiles: decode wins at Tq = 4 (Tk 64/256/1024: 8.5/19/78 µs against
// 10.9/24/99), the tiled kernel at Tq = 8 (9.6/27/92 against 12.5/35/130).
constexpr int64_t kDecodeMaxTq = 4;

typedef float v4f __attribute__((vector_size(16)));

// The 4 lanes of x summed pairwise from the VW lanes (lane i of the result: x[i] + x[i + 4] + ...).
static inline v4f fold4(vf x) {
#if JOULE_ATTN_VW == 4
  return x;
#elif defined(JOULE_ATTN_SHUFFLE) && JOULE_ATTN_VW == 8
  return __builtin_shufflevector(x, x, 0, 1, 2, 3) + __builtin_shufflevector(x, x, 4, 5, 6, 7);
#elif defined(JOULE_ATTN_SHUFFLE) && JOULE_ATTN_VW == 16
  typedef float v8f __attribute__((vector_size(32)));
  const v8f h = __builtin_shufflevector(x, x, 0, 1, 2, 3, 4, 5, 6, 7) +
                __builtin_shufflevector(x, x, 8, 9, 10, 11, 12, 13, 14, 15);
  return __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
#else
  v4f r = {};
  for (int i = 0; i < VW; ++i) r[i % 4] += x[i];
  return r;
#endif
}

// {sum(a0), sum(a1), sum(a2), sum(a3)}: four horizontal sums for the price of about one.
static inline v4f sum4(vf a0, vf a1, vf a2, vf a3) {
  const v4f b0 = fold4(a0), b1 = fold4(a1), b2 = fold4(a2), b3 = fold4(a3);
#ifdef JOULE_ATTN_SHUFFLE
  const v4f u = __builtin_shufflevector(b0, b1, 0, 1, 4, 5) + __builtin_shufflevector(b0, b1, 2, 3, 6, 7);
  const v4f w = __builtin_shufflevector(b2, b3, 0, 1, 4, 5) + __builtin_shufflevector(b2, b3, 2, 3, 6, 7);
  return __builtin_shufflevector(u, w, 0, 2, 4, 6) + __builtin_shufflevector(u, w, 1, 3, 5, 7);
#else
  return v4f{(b0[0] + b0[2]) + (b0[1] + b0[3]), (b1[0] + b1[2]) + (b1[1] + b1[3]), (b2[0] + b2[2]) + (b2[1] + b2[3]),
             (b3[0] + b3[2]) + (b3[1] + b3[3])};
#endif
}

static inline float sum1(vf a) {
  const v4f b = fold4(a);
  return (b[0] + b[2]) + (b[1] + b[3]);
}

// One online-softmax step on a block of n scores, exactly as forward_head does it for a row: pads
// the block to whole vectors with -inf, turns the scores into p = exp(s - m_new) in place (all 0
// while no key of the row has had a score above -inf: masked, -inf or NaN) and updates the running
// max m (NaN scores never win it) and sum l. Returns the factor the accumulator must be scaled by.
static inline float softmax_block(float* sc, int64_t n, float& m, float& l) {
  const int64_t width = round_up(n, VW);
  for (int64_t j = n; j < width; ++j) sc[j] = kNegInf;
  vf mv = bc(kNegInf);
  for (int64_t j = 0; j < width; j += VW) {
    const vf x = ld(sc + j);
    mv = x > mv ? x : mv;
  }
  const float mnew = std::max(m, hmax(mv));
  if (mnew == kNegInf) {
    for (int64_t j = 0; j < width; j += VW) st(sc + j, vf{});
    return 1.f;
  }
  vf sum = vf{};
  const vf mn = bc(mnew);
  for (int64_t j = 0; j < width; j += VW) {
    const vf p = vexp(ld(sc + j) - mn);
    st(sc + j, p);
    sum += p;
  }
  const float alpha = m == kNegInf ? 0.f : std::exp(m - mnew);
  l = l * alpha + hsum(sum);
  m = mnew;
  return alpha;
}

// Writes a finished row: out = acc / l and lse = m + log l, or zeros and -inf for a row that saw no key.
static inline bool empty_row(float l, float* orow, int64_t D, float* lse) {
  if (l != 0.f) return false;
  std::memset(orow, 0, sizeof(float) * D);
  *lse = kNegInf;
  return true;
}

// One query row over keys [0, kend), D >= VW. NF = D / VW whole vectors (0: a run-time count);
// the D % VW trailing floats are handled as the last whole vector of the row, [D - VW, D), which
// overlaps the one before it: its score products are masked to the trailing lanes (an overlapped
// lane could hold inf, and 0 * inf is NaN), and its output is stored before the whole vectors,
// which overwrite the overlapped lanes. Nothing outside a row's D floats is read or written.
template <int NF>
void decode_row(const AttentionArgs& a, const Head& hd, const float* qr, int64_t kend, float* orow, float* lse) {
  const int64_t D = a.D;
  const int nf = NF > 0 ? NF : static_cast<int>(D / VW);
  const int tail = static_cast<int>(D - static_cast<int64_t>(nf) * VW);
  const int64_t tb = D - VW;  // start of the trailing vector
  vi tmask;
  for (int i = 0; i < VW; ++i) tmask[i] = i >= VW - tail ? -1 : 0;
  const vf qt = ld(qr + tb);
  // Up to four vectors, two sets of accumulators (even and odd keys): twice the FMA chains.
  constexpr int kNF = NF > 0 ? NF : kMaxNv;
  constexpr bool kPair = NF > 0 && NF <= 4;
  vf acc[kNF], acc2[kPair ? kNF : 1];
  for (int u = 0; u < nf; ++u) acc[u] = vf{};
  if constexpr (kPair)
    for (int u = 0; u < nf; ++u) acc2[u] = vf{};
  vf acct = vf{}, acct2 = vf{};
  float m = kNegInf, l = 0.f;
  alignas(64) float sc[kBlock];
  const int64_t ks = hd.ks, vs = hd.vs;
  for (int64_t kb = 0; kb < kend; kb += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, kend - kb);
    const float* kr = hd.k + kb * ks;
    int64_t j = 0;
    for (; j + 4 <= n; j += 4, kr += 4 * ks) {
      vf s0 = vf{}, s1 = vf{}, s2 = vf{}, s3 = vf{};
      for (int u = 0; u < nf; ++u) {
        const vf q = ld(qr + u * VW);
        s0 += q * ld(kr + u * VW);
        s1 += q * ld(kr + ks + u * VW);
        s2 += q * ld(kr + 2 * ks + u * VW);
        s3 += q * ld(kr + 3 * ks + u * VW);
      }
      if (tail) {
        s0 += tmask ? qt * ld(kr + tb) : vf{};
        s1 += tmask ? qt * ld(kr + ks + tb) : vf{};
        s2 += tmask ? qt * ld(kr + 2 * ks + tb) : vf{};
        s3 += tmask ? qt * ld(kr + 3 * ks + tb) : vf{};
      }
      const v4f s = sum4(s0, s1, s2, s3) * a.scale;
      std::memcpy(sc + j, &s, sizeof s);
    }
    for (; j < n; ++j, kr += ks) {
      vf s0 = vf{};
      for (int u = 0; u < nf; ++u) s0 += ld(qr + u * VW) * ld(kr + u * VW);
      if (tail) s0 += tmask ? qt * ld(kr + tb) : vf{};
      sc[j] = sum1(s0) * a.scale;
    }
    const float alpha = softmax_block(sc, n, m, l);
    if (alpha != 1.f) {
      const vf av = bc(alpha);
      for (int u = 0; u < nf; ++u) acc[u] *= av;
      if constexpr (kPair)
        for (int u = 0; u < nf; ++u) acc2[u] *= av;
      acct *= av;
      acct2 *= av;
    }
    // Every key of the block is accumulated, p = 0 included (0 * inf = NaN, as forward_head does).
    const float* vr = hd.v + kb * vs;
    j = 0;
    if constexpr (kPair) {
      for (; j + 2 <= n; j += 2, vr += 2 * vs) {
        const vf p0 = bc(sc[j]), p1 = bc(sc[j + 1]);
        for (int u = 0; u < nf; ++u) {
          acc[u] += p0 * ld(vr + u * VW);
          acc2[u] += p1 * ld(vr + vs + u * VW);
        }
        if (tail) {
          acct += p0 * ld(vr + tb);
          acct2 += p1 * ld(vr + vs + tb);
        }
      }
    }
    for (; j < n; ++j, vr += vs) {
      const vf p = bc(sc[j]);
      for (int u = 0; u < nf; ++u) acc[u] += p * ld(vr + u * VW);
      if (tail) acct += p * ld(vr + tb);
    }
  }
  if (empty_row(l, orow, D, lse)) return;
  const vf inv = bc(1.f / l);
  if (tail) st(orow + tb, (acct + acct2) * inv);
  for (int u = 0; u < nf; ++u) {
    if constexpr (kPair) acc[u] += acc2[u];
    st(orow + u * VW, acc[u] * inv);
  }
  *lse = m + std::log(l);
}

// D < VW: scalar dot products and accumulation, the same softmax steps.
static void decode_row_small(const AttentionArgs& a, const Head& hd, const float* qr, int64_t kend, float* orow,
                             float* lse) {
  const int64_t D = a.D;
  float acc[VW] = {};
  float m = kNegInf, l = 0.f;
  alignas(64) float sc[kBlock];
  for (int64_t kb = 0; kb < kend; kb += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, kend - kb);
    for (int64_t j = 0; j < n; ++j) {
      const float* kr = hd.k + (kb + j) * hd.ks;
      float s = 0.f;
      for (int64_t d = 0; d < D; ++d) s += qr[d] * kr[d];
      sc[j] = s * a.scale;
    }
    const float alpha = softmax_block(sc, n, m, l);
    if (alpha != 1.f)
      for (int64_t d = 0; d < D; ++d) acc[d] *= alpha;
    for (int64_t j = 0; j < n; ++j) {
      const float* vr = hd.v + (kb + j) * hd.vs;
      for (int64_t d = 0; d < D; ++d) acc[d] += sc[j] * vr[d];
    }
  }
  if (empty_row(l, orow, D, lse)) return;
  const float inv = 1.f / l;
  for (int64_t d = 0; d < D; ++d) orow[d] = acc[d] * inv;
  *lse = m + std::log(l);
}

// The forward of one (b, h) by rows: no scratch, no copies. Any Tq works (rows are independent);
// the forward routes Tq <= kDecodeMaxTq here.
template <int NF>
void decode_head(const AttentionArgs& a, int64_t bh) {
  const Head hd = head_of(a, bh);
  const int64_t b = bh / a.H, h = bh % a.H;
  float* obase = a.o + b * a.o_s[0] + h * a.o_s[1];
  float* lse = a.lse + bh * a.Tq;
  const int64_t offset = a.Tk - a.Tq;
  for (int64_t i = 0; i < a.Tq; ++i) {
    // Causal: query i sees keys j <= i + Tk - Tq (none when that is negative).
    const int64_t kend = a.causal ? std::max<int64_t>(0, std::min<int64_t>(a.Tk, i + offset + 1)) : a.Tk;
    const float* qr = hd.q + i * hd.qs;
    float* orow = obase + i * a.o_s[2];
    if (NF == 0 && a.D < VW) {
      decode_row_small(a, hd, qr, kend, orow, lse + i);
    } else {
      decode_row<NF>(a, hd, qr, kend, orow, lse + i);
    }
  }
}

static void decode_heads(const AttentionArgs& a, int64_t begin, int64_t end) {
  const int64_t nf = a.D / VW;
  for (int64_t bh = begin; bh < end; ++bh) {
    switch (nf) {
      case 1: decode_head<1>(a, bh); break;
      case 2: decode_head<2>(a, bh); break;
      case 3: decode_head<3>(a, bh); break;
      case 4: decode_head<4>(a, bh); break;
      case 8: decode_head<8>(a, bh); break;
      default: decode_head<0>(a, bh); break;  // D < VW, or a run-time vector count
    }
  }
}

template <template <int> class Fn>
void run_heads(const AttentionArgs& a, int64_t begin, int64_t end) {
  Scratch& s = thread_scratch();
  const int nv = static_cast<int>((a.D + VW - 1) / VW);
  for (int64_t bh = begin; bh < end; ++bh) {
    const int64_t next = bh + 1 < end ? bh + 1 : -1;  // the head whose rows to prefetch
    switch (nv) {
      case 1: Fn<1>::run(a, bh, next, s); break;
      case 2: Fn<2>::run(a, bh, next, s); break;
      case 3: Fn<3>::run(a, bh, next, s); break;
      case 4: Fn<4>::run(a, bh, next, s); break;
      case 8: Fn<8>::run(a, bh, next, s); break;
      default: Fn<0>::run(a, bh, next, s); break;
    }
  }
  s.trim();
}

template <int NV>
struct ForwardFn {
  static void run(const AttentionArgs& a, int64_t bh, int64_t next, Scratch& s) { forward_head<NV>(a, bh, next, s); }
};
template <int NV>
struct BackwardFn {
  static void run(const AttentionArgs& a, int64_t bh, int64_t next, Scratch& s) { backward_head<NV>(a, bh, next, s); }
};

// The forward of the (b, h) pairs [begin, end): the decode path for few query rows, else tiled.
static inline void forward_heads(const AttentionArgs& a, int64_t begin, int64_t end) {
  if (a.Tq <= kDecodeMaxTq) {
    decode_heads(a, begin, end);
  } else {
    run_heads<ForwardFn>(a, begin, end);
  }
}
