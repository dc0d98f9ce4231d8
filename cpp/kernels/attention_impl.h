// The attention kernels, written once over GCC vector extensions and compiled once per ISA:
// attention.cpp includes this with JOULE_ATTN_VW = 4 (SSE2, the portable baseline of x86-64 and
// plain scalar code elsewhere), attention_x86.cpp with 8 (AVX2 + FMA) and 16 (AVX-512) under
// `#pragma GCC target`. The includer opens the namespace and has included <algorithm>, <cmath>,
// <cstring>, <limits> and <vector> (no std header may be included under a target pragma).
//
// Layout per (b, h): K is copied once, transposed ([D][Tkp]) for the score dot products, whose
// vector lanes run over keys; V (forward) and K (backward, for dQ) row-major with the head dim
// padded to whole vectors ([Tkp][Dp]) for the accumulations, whose lanes run over the head dim.
// Query rows are processed R = 4 at a time against key blocks of kBlock keys with an online
// softmax: per row a running max m and sum l, the accumulator rescaled by exp(m_old - m_new).
// That is O(T * D) scratch per (b, h): never a T x T matrix.
//
// Per-ISA notes: scores use two key vectors x R rows = 8 independent FMA chains.
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

constexpr int kRows = 4;                    // query rows per tile
constexpr int kBlock = 128;                 // keys per online-softmax block (a multiple of 2 * VW)
constexpr int kMaxNv = 256 / VW;            // head-dim vectors at the largest head size
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

static inline vf ld(const float* p) { return *reinterpret_cast<const vfu*>(p); }
static inline void st(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }
static inline vf splat(float s) { return vf{} + s; }
static inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// exp(x) for a vector: 2^n * p(f), n = round(x log2 e), f = x - n ln 2, p of degree 6
// (relative error ~1e-7 on [-ln2/2, ln2/2]). x <= -88 (and -inf) gives 0; NaN stays NaN.
static inline vf vexp(vf x) {
  x = x < splat(-88.f) ? splat(-88.f) : x;
  x = x > splat(88.f) ? splat(88.f) : x;
  const vf t = x * 1.44269504088896341f;
  const vf n = (t + 12582912.f) - 12582912.f;  // round to nearest (|t| < 2^22)
  vf f = x - n * 0.693145751953125f;
  f = f - n * 1.428606765330187e-06f;
  vf p = splat(1.f / 720);
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

struct Scratch {
  std::vector<float> kt, vt, kp, vp, dk, dv;
  float qp[kRows][256];
  float dop[kRows][256];
  float sc[kRows][kBlock];
  float dp[kRows][kBlock];
};

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

// out[r][j] = mul * sum_d A[r][d] * BT[d][col0 + j] for j < 2 * VW * npairs; A rows are lda apart.
static inline void dots(const float* A, int64_t lda, const float* bt, int64_t ldb, int64_t col0, int64_t npairs,
                        int64_t D, float mul, float (*out)[kBlock]) {
  for (int64_t jp = 0; jp < npairs; ++jp) {
    vf acc0[kRows], acc1[kRows];
    for (int r = 0; r < kRows; ++r) acc0[r] = acc1[r] = vf{};
    const float* col = bt + col0 + jp * 2 * VW;
    for (int64_t d = 0; d < D; ++d) {
      const vf k0 = ld(col + d * ldb), k1 = ld(col + d * ldb + VW);
      for (int r = 0; r < kRows; ++r) {
        const vf a = splat(A[r * lda + d]);
        acc0[r] += a * k0;
        acc1[r] += a * k1;
      }
    }
    for (int r = 0; r < kRows; ++r) {
      st(out[r] + jp * 2 * VW, acc0[r] * mul);
      st(out[r] + jp * 2 * VW + VW, acc1[r] * mul);
    }
  }
}

// Sets out[r][j] = -inf where key kb + j is masked for query row i0 + r (past n, or causal).
static inline void mask_block(float (*out)[kBlock], int64_t i0, int64_t kb, int64_t n, int64_t width, bool causal,
                              int64_t offset, const int64_t* row_of) {
  for (int r = 0; r < kRows; ++r) {
    int64_t lim = n;
    if (causal) lim = std::min<int64_t>(lim, row_of[r] + offset + 1 - kb);
    for (int64_t j = std::max<int64_t>(lim, 0); j < width; ++j) out[r][j] = kNegInf;
  }
  (void)i0;
}

// dst[d * ld + j] = src[j * ss + d] for j < n, d < D. By 16 keys (one cache line of dst) at a
// time: a plain loop over j stores with a stride of ld floats, 4 KiB for Tk = 1024, so every
// store of a column maps to the same L1 set and misses (measured: 2/3 of forward_head's time at
// Tq = 8, Tk = 1024, D = 32).
static inline void transpose_rows(const float* src, int64_t ss, int64_t n, int64_t D, float* dst, int64_t ld) {
  constexpr int64_t kJ = 16;
  for (int64_t j0 = 0; j0 < n; j0 += kJ) {
    const int64_t jn = std::min<int64_t>(kJ, n - j0);
    const float* s0 = src + j0 * ss;
    for (int64_t d = 0; d < D; ++d) {
      float* row = dst + d * ld + j0;
      for (int64_t j = 0; j < jn; ++j) row[j] = s0[j * ss + d];
    }
  }
}

template <int NV>
void forward_head(const AttentionArgs& a, int64_t bh, Scratch& s) {
  const int64_t D = a.D, Tq = a.Tq, Tk = a.Tk;
  const int nv = NV > 0 ? NV : static_cast<int>((D + VW - 1) / VW);
  const int64_t Dp = static_cast<int64_t>(nv) * VW;
  const int64_t Tkp = round_up(std::max<int64_t>(Tk, 1), 2 * VW);
  const Head hd = head_of(a, bh);
  s.kt.assign(static_cast<size_t>(D * Tkp), 0.f);
  s.vp.assign(static_cast<size_t>(Tkp * Dp), 0.f);
  transpose_rows(hd.k, hd.ks, Tk, D, s.kt.data(), Tkp);
  for (int64_t j = 0; j < Tk; ++j) std::memcpy(&s.vp[j * Dp], hd.v + j * hd.vs, sizeof(float) * D);
  const int64_t b = bh / a.H, h = bh % a.H;
  float* obase = a.o + b * a.o_s[0] + h * a.o_s[1];
  float* lse = a.lse + bh * Tq;
  const int64_t offset = Tk - Tq;
  for (int64_t i0 = 0; i0 < Tq; i0 += kRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kRows, Tq - i0));
    int64_t row_of[kRows];
    for (int r = 0; r < kRows; ++r) {
      // Rows past the end repeat the last one (computed, not stored): no tail code paths.
      row_of[r] = i0 + std::min(r, rows - 1);
      std::memcpy(s.qp[r], hd.q + row_of[r] * hd.qs, sizeof(float) * D);
    }
    vf acc[kRows][NV > 0 ? NV : kMaxNv];
    float m[kRows], l[kRows];
    for (int r = 0; r < kRows; ++r) {
      m[r] = kNegInf;
      l[r] = 0;
      for (int u = 0; u < nv; ++u) acc[r][u] = vf{};
    }
    const int64_t kend = a.causal ? std::min<int64_t>(Tk, row_of[kRows - 1] + offset + 1) : Tk;
    for (int64_t kb = 0; kb < kend; kb += kBlock) {
      const int64_t n = std::min<int64_t>(kBlock, kend - kb);
      const int64_t npairs = (n + 2 * VW - 1) / (2 * VW);
      const int64_t width = npairs * 2 * VW;
      dots(&s.qp[0][0], 256, s.kt.data(), Tkp, kb, npairs, D, a.scale, s.sc);
      mask_block(s.sc, i0, kb, n, width, a.causal, offset, row_of);
      for (int r = 0; r < kRows; ++r) {
        vf mv = splat(kNegInf);
        for (int64_t j = 0; j < width; j += VW) {
          const vf x = ld(s.sc[r] + j);
          mv = x > mv ? x : mv;
        }
        const float mnew = std::max(m[r], hmax(mv));
        if (mnew == kNegInf) {
          // No visible key yet: p = 0 everywhere in this block.
          for (int64_t j = 0; j < width; j += VW) st(s.sc[r] + j, vf{});
          continue;
        }
        vf sum = vf{};
        const vf mn = splat(mnew);
        for (int64_t j = 0; j < width; j += VW) {
          const vf p = vexp(ld(s.sc[r] + j) - mn);
          st(s.sc[r] + j, p);
          sum += p;
        }
        const float alpha = m[r] == kNegInf ? 0.f : std::exp(m[r] - mnew);
        l[r] = l[r] * alpha + hsum(sum);
        m[r] = mnew;
        if (alpha != 1.f) {
          const vf av = splat(alpha);
          for (int u = 0; u < nv; ++u) acc[r][u] *= av;
        }
      }
      for (int64_t j = 0; j < n; ++j) {
        const float* vr = &s.vp[(kb + j) * Dp];
        for (int r = 0; r < kRows; ++r) {
          const vf p = splat(s.sc[r][j]);
          for (int u = 0; u < nv; ++u) acc[r][u] += p * ld(vr + u * VW);
        }
      }
    }
    for (int r = 0; r < rows; ++r) {
      float* orow = obase + (i0 + r) * a.o_s[2];
      if (l[r] == 0.f) {
        std::memset(orow, 0, sizeof(float) * D);
        lse[i0 + r] = kNegInf;
        continue;
      }
      const vf inv = splat(1.f / l[r]);
      float tmp[256];
      for (int u = 0; u < nv; ++u) st(tmp + u * VW, acc[r][u] * inv);
      std::memcpy(orow, tmp, sizeof(float) * D);
      lse[i0 + r] = m[r] + std::log(l[r]);
    }
  }
}

template <int NV>
void backward_head(const AttentionArgs& a, int64_t bh, Scratch& s) {
  const int64_t D = a.D, Tq = a.Tq, Tk = a.Tk;
  const int nv = NV > 0 ? NV : static_cast<int>((D + VW - 1) / VW);
  const int64_t Dp = static_cast<int64_t>(nv) * VW;
  const int64_t Tkp = round_up(std::max<int64_t>(Tk, 1), 2 * VW);
  const Head hd = head_of(a, bh);
  const int64_t b = bh / a.H, h = bh % a.H;
  s.kt.assign(static_cast<size_t>(D * Tkp), 0.f);
  s.vt.assign(static_cast<size_t>(D * Tkp), 0.f);
  s.kp.assign(static_cast<size_t>(Tkp * Dp), 0.f);
  s.dk.assign(static_cast<size_t>(Tkp * Dp), 0.f);
  s.dv.assign(static_cast<size_t>(Tkp * Dp), 0.f);
  transpose_rows(hd.k, hd.ks, Tk, D, s.kt.data(), Tkp);
  transpose_rows(hd.v, hd.vs, Tk, D, s.vt.data(), Tkp);
  for (int64_t j = 0; j < Tk; ++j) std::memcpy(&s.kp[j * Dp], hd.k + j * hd.ks, sizeof(float) * D);
  const float* obase = a.o + b * a.o_s[0] + h * a.o_s[1];
  const float* dobase = a.dout + b * a.do_s[0] + h * a.do_s[1];
  float* dqbase = a.dq + b * a.dq_s[0] + h * a.dq_s[1];
  const float* lse = a.lse + bh * Tq;
  const int64_t offset = Tk - Tq;
  for (int r = 0; r < kRows; ++r) {
    std::memset(s.qp[r], 0, sizeof(s.qp[r]));
    std::memset(s.dop[r], 0, sizeof(s.dop[r]));
  }
  for (int64_t i0 = 0; i0 < Tq; i0 += kRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kRows, Tq - i0));
    int64_t row_of[kRows];
    float delta[kRows], lr[kRows];
    for (int r = 0; r < kRows; ++r) {
      row_of[r] = i0 + std::min(r, rows - 1);
      std::memcpy(s.qp[r], hd.q + row_of[r] * hd.qs, sizeof(float) * D);
      if (r < rows) {
        const float* orow = obase + row_of[r] * a.o_s[2];
        const float* dorow = dobase + row_of[r] * a.do_s[2];
        std::memcpy(s.dop[r], dorow, sizeof(float) * D);
        double dl = 0;
        for (int64_t d = 0; d < D; ++d) dl += static_cast<double>(dorow[d]) * orow[d];
        delta[r] = static_cast<float>(dl);
        // A row that saw no key (lse = -inf) has p = 0 everywhere: exp(s - inf).
        lr[r] = lse[row_of[r]] == kNegInf ? std::numeric_limits<float>::infinity() : lse[row_of[r]];
      } else {
        // Repeated rows contribute nothing: dO = 0 and delta = 0 make ds = 0 and dV += 0.
        std::memset(s.dop[r], 0, sizeof(float) * D);
        delta[r] = 0;
        lr[r] = std::numeric_limits<float>::infinity();
      }
    }
    vf dq[kRows][NV > 0 ? NV : kMaxNv];
    for (int r = 0; r < kRows; ++r)
      for (int u = 0; u < nv; ++u) dq[r][u] = vf{};
    const int64_t kend = a.causal ? std::min<int64_t>(Tk, row_of[kRows - 1] + offset + 1) : Tk;
    for (int64_t kb = 0; kb < kend; kb += kBlock) {
      const int64_t n = std::min<int64_t>(kBlock, kend - kb);
      const int64_t npairs = (n + 2 * VW - 1) / (2 * VW);
      const int64_t width = npairs * 2 * VW;
      dots(&s.qp[0][0], 256, s.kt.data(), Tkp, kb, npairs, D, a.scale, s.sc);
      mask_block(s.sc, i0, kb, n, width, a.causal, offset, row_of);
      dots(&s.dop[0][0], 256, s.vt.data(), Tkp, kb, npairs, D, 1.f, s.dp);
      for (int r = 0; r < kRows; ++r) {
        const vf lv = splat(lr[r]), dl = splat(delta[r]);
        for (int64_t j = 0; j < width; j += VW) {
          const vf p = vexp(ld(s.sc[r] + j) - lv);
          st(s.sc[r] + j, p);                                         // p
          st(s.dp[r] + j, p * (ld(s.dp[r] + j) - dl) * a.scale);      // ds, scale folded in
        }
      }
      for (int64_t j = 0; j < n; ++j) {
        float* dvr = &s.dv[(kb + j) * Dp];
        float* dkr = &s.dk[(kb + j) * Dp];
        const float* kr = &s.kp[(kb + j) * Dp];
        for (int u = 0; u < nv; ++u) {
          vf dva = ld(dvr + u * VW), dka = ld(dkr + u * VW);
          const vf kv = ld(kr + u * VW);
          for (int r = 0; r < kRows; ++r) {
            const vf p = splat(s.sc[r][j]), ds = splat(s.dp[r][j]);
            dva += p * ld(s.dop[r] + u * VW);
            dka += ds * ld(s.qp[r] + u * VW);
            dq[r][u] += ds * kv;
          }
          st(dvr + u * VW, dva);
          st(dkr + u * VW, dka);
        }
      }
    }
    for (int r = 0; r < rows; ++r) {
      float tmp[256];
      for (int u = 0; u < nv; ++u) st(tmp + u * VW, dq[r][u]);
      std::memcpy(dqbase + (i0 + r) * a.dq_s[2], tmp, sizeof(float) * D);
    }
  }
  float* dkbase = a.dk + b * a.dk_s[0] + h * a.dk_s[1];
  float* dvbase = a.dv + b * a.dv_s[0] + h * a.dv_s[1];
  for (int64_t j = 0; j < Tk; ++j) {
    std::memcpy(dkbase + j * a.dk_s[2], &s.dk[j * Dp], sizeof(float) * D);
    std::memcpy(dvbase + j * a.dv_s[2], &s.dv[j * Dp], sizeof(float) * D);
  }
}

// ---- Decode path ----------------------------------------------------------------------------

// Query rows up to which the forward takes decode_head (rows are independent there, so any Tq
// is correct). Measured on 1 thread, B = 1, H = 4, causal, D = 32 and 64, Tk = 64..1024, all three
// ISAs: decode is faster (1.1-8x) up to Tq = 8 everywhere; at Tq = 16 the tiled kernel, whose 4
// rows share each key load, starts winning (Tk = 1024, AVX-512) and it wins clearly by Tq = 64.
constexpr int64_t kDecodeMaxTq = 8;

typedef float v4f __attribute__((vector_size(16)));

// __builtin_shufflevector: GCC 12+ and clang; older compilers take the scalar folds below.
#if !defined(JOULE_ATTN_SHUFFLE) && !defined(JOULE_ATTN_NO_SHUFFLE) && \
    (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12))
#define JOULE_ATTN_SHUFFLE 1
#endif

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
  vf mv = splat(kNegInf);
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
  const vf mn = splat(mnew);
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
      const vf av = splat(alpha);
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
        const vf p0 = splat(sc[j]), p1 = splat(sc[j + 1]);
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
      const vf p = splat(sc[j]);
      for (int u = 0; u < nf; ++u) acc[u] += p * ld(vr + u * VW);
      if (tail) acct += p * ld(vr + tb);
    }
  }
  if (empty_row(l, orow, D, lse)) return;
  const vf inv = splat(1.f / l);
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
  Scratch s;
  const int nv = static_cast<int>((a.D + VW - 1) / VW);
  for (int64_t bh = begin; bh < end; ++bh) {
    switch (nv) {
      case 1: Fn<1>::run(a, bh, s); break;
      case 2: Fn<2>::run(a, bh, s); break;
      case 3: Fn<3>::run(a, bh, s); break;
      case 4: Fn<4>::run(a, bh, s); break;
      case 8: Fn<8>::run(a, bh, s); break;
      default: Fn<0>::run(a, bh, s); break;
    }
  }
}

template <int NV>
struct ForwardFn {
  static void run(const AttentionArgs& a, int64_t bh, Scratch& s) { forward_head<NV>(a, bh, s); }
};
template <int NV>
struct BackwardFn {
  static void run(const AttentionArgs& a, int64_t bh, Scratch& s) { backward_head<NV>(a, bh, s); }
};

// The forward of the (b, h) pairs [begin, end): the decode path for few query rows, else tiled.
static inline void forward_heads(const AttentionArgs& a, int64_t begin, int64_t end) {
  if (a.Tq <= kDecodeMaxTq) {
    decode_heads(a, begin, end);
  } else {
    run_heads<ForwardFn>(a, begin, end);
  }
}
